"""Draw the book's lifecycle loop: the figure on its first page, each step linked to its chapter.

The loop is drawn as inline SVG (so that its links work) between two markers in index.qmd:

    python book/lifecycle_loop.py          # rewrite the figure in index.qmd (and the README's
                                           # picture, book/lifecycle-loop.svg)
    python book/lifecycle_loop.py --check  # exit 1 if index.qmd's figure is not current

Each step shows the number Quarto gives its chapter (read from _quarto.yml), so the figure is
redrawn when a chapter is added; tests/test_book.py checks that the figure is current and that
every link names a chapter of the book.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT / "index.qmd"
PICTURE = ROOT / "book" / "lifecycle-loop.svg"  # the same drawing as a file, for the README
START = "<!-- lifecycle-loop:start (written by book/lifecycle_loop.py) -->"
END = "<!-- lifecycle-loop:end -->"

# (step, chapter notebook): the way in, then the loop that turns for as long as the model lives
ENTRY = [
    ("data versioning", "03-data-versioning"),
    ("features", "04-feature-store"),
]
LOOP = [
    ("tracking", "05-experiment-tracking"),
    ("training", "07-pipeline-orchestration"),
    ("registry", "06-model-registry"),
    ("deployment", "08-deployment"),
    ("A/B testing", "09-ab-testing"),
    ("monitoring", "10-monitoring"),
    ("drift detection", "10-monitoring"),
    ("retraining", "11-automated-retraining"),
]
STEPS = ENTRY + LOOP

WIDTH, HEIGHT = 860, 530
CENTRE = (500.0, 265.0)
RADII = (280.0, 210.0)
BOX = (150.0, 46.0)
ENTRY_X = 92.0


def _loop_positions() -> list[tuple[float, float]]:
    """The loop's steps on an ellipse, clockwise, tracking at the left (where the way in ends)."""
    positions = []
    for i in range(len(LOOP)):
        angle = math.pi + 2 * math.pi * i / len(LOOP)  # from the left, clockwise on screen
        positions.append((CENTRE[0] + RADII[0] * math.cos(angle),
                          CENTRE[1] + RADII[1] * math.sin(angle)))
    return positions


def _edge(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float, float, float]:
    """The segment from box ``a`` to box ``b``, cut where it leaves and enters the boxes."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    half_w, half_h = BOX[0] / 2 + 4, BOX[1] / 2 + 4
    t = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return a[0] + dx * t, a[1] + dy * t, b[0] - dx * t, b[1] - dy * t


def chapter_numbers(config: Path = ROOT / "_quarto.yml") -> dict[str, int]:
    """Return each chapter notebook's number as Quarto gives it: the order of ``_quarto.yml``.

    The index is unnumbered, parts are not chapters, and appendices are lettered, so the
    numbers follow the notebooks listed under ``book.chapters``.
    """
    import yaml

    book = yaml.safe_load(config.read_text(encoding="utf-8"))["book"]
    listed: list[str] = []
    for entry in book["chapters"]:
        if isinstance(entry, dict):
            listed += entry.get("chapters", [])
        else:
            listed.append(entry)
    notebooks = [Path(item).stem for item in listed if item.endswith(".ipynb")]
    return {stem: number for number, stem in enumerate(notebooks, start=1)}


def svg() -> str:
    """Return the figure as one SVG element."""
    positions = [(ENTRY_X, 92.0), (ENTRY_X, 177.0), *_loop_positions()]
    numbers = chapter_numbers()
    lines = [
        f'<svg class="lifecycle-loop" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="lifecycle-loop-title" xmlns="http://www.w3.org/2000/svg">',
        '<title id="lifecycle-loop-title">The lifecycle loop of a model: data versioning and '
        "features lead into tracking, training, registry, deployment, A/B testing, monitoring, "
        "drift detection and retraining, which leads back to tracking</title>",
        "<defs><marker id=\"lifecycle-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<text x="{CENTRE[0]:.0f}" y="{CENTRE[1] - 12:.0f}" text-anchor="middle" '
        'font-size="17" font-weight="600" fill="#333">Lumen\'s churn model</text>',
        f'<text x="{CENTRE[0]:.0f}" y="{CENTRE[1] + 12:.0f}" text-anchor="middle" '
        'font-size="13" fill="#555">one turn of the loop a month</text>',
    ]
    # arrows: the way in, then around the loop and back to tracking
    edges = [(0, 1), (1, len(ENTRY))]
    edges += [(len(ENTRY) + i, len(ENTRY) + (i + 1) % len(LOOP)) for i in range(len(LOOP))]
    for a, b in edges:
        x1, y1, x2, y2 = _edge(positions[a], positions[b])
        lines.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                     'stroke="#555" stroke-width="1.6" marker-end="url(#lifecycle-arrow)"/>')
    back = _edge(positions[-1], positions[len(ENTRY)])
    label_x, label_y = (back[0] + back[2]) / 2 - 8, (back[1] + back[3]) / 2 + 26
    lines.append(f'<text x="{label_x:.1f}" y="{label_y:.1f}" text-anchor="end" font-size="12" '
                 'fill="#555">back to tracking</text>')
    for number, ((step, chapter), (x, y)) in enumerate(zip(STEPS, positions, strict=True), 1):
        left, top = x - BOX[0] / 2, y - BOX[1] / 2
        colour = "#e8eef7" if (step, chapter) in LOOP else "#eef5ea"
        lines += [
            f'<a href="notebooks/{chapter}.html">',
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{BOX[0]:.0f}" height="{BOX[1]:.0f}" '
            f'rx="9" fill="{colour}" stroke="#4c72b0" stroke-width="1.4"/>',
            f'<text x="{x:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="14" '
            f'fill="#1f3b66">{number}. {escape(step)}</text>',
            f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" font-size="11.5" '
            f'fill="#555">chapter {numbers[chapter]}</text>',
            "</a>",
        ]
    lines.append("</svg>")
    return "\n".join(lines)


def block() -> str:
    """Return the raw HTML block index.qmd holds between its markers."""
    return f"{START}\n```{{=html}}\n{svg()}\n```\n{END}"


def current(text: str) -> bool:
    """Whether ``text`` (index.qmd) holds the figure this script draws."""
    return block() in text


def picture() -> str:
    """Return the drawing as a standalone SVG file (white ground, a sans-serif font)."""
    drawing = svg().replace(
        '<svg class="lifecycle-loop" ',
        '<svg class="lifecycle-loop" font-family="Helvetica, Arial, sans-serif" ', 1)
    ground = f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
    head, rest = drawing.split("\n", 1)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}\n{ground}\n{rest}\n'


def write(path: Path = INDEX) -> None:
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no {START!r} ... {END!r} markers to write between")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + block() + tail, encoding="utf-8")
    PICTURE.write_text(picture(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if index.qmd is stale")
    args = parser.parse_args(argv)
    if args.check:
        ok = current(INDEX.read_text(encoding="utf-8")) and PICTURE.is_file() and \
            PICTURE.read_text(encoding="utf-8") == picture()
        print("index.qmd's lifecycle loop is current" if ok else
              "index.qmd's lifecycle loop is stale: run python book/lifecycle_loop.py")
        return 0 if ok else 1
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
