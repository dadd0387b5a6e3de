"""companion.llm without a store: corpus, questions, retrievers, quality, configs, generation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from companion import llm
from companion.errors import InvalidParameterError, UnknownNameError
from companion.evaluation import Estimate
from companion.llm.record import main as record_main

TEMPLATE = "Articles:\n{{context}}\nQuestion: {{question}}"


# --------------------------------------------------------------------------- corpus


def test_corpus_versions_add_the_price_rise_article_in_september():
    august, september = llm.corpus("2025-08"), llm.corpus("2025-09")
    assert len(august) == 39 and len(september) == 40
    assert {a.article_id for a in september} - {a.article_id for a in august} == {
        llm.PRICE_RISE_ARTICLE}
    assert len({a.article_id for a in september}) == 40
    assert all(a.paragraphs and a.added <= "2025-09" for a in september)
    with pytest.raises(UnknownNameError, match="2025-07"):
        llm.corpus("2025-07")


def test_paragraph_chunks_start_with_the_title_and_are_numbered_per_article():
    article = llm.corpus()[0]
    chunks = llm.chunk_articles([article])
    assert [c.chunk_id for c in chunks] == [f"{article.article_id}#{i}"
                                            for i in range(len(article.paragraphs))]
    assert chunks[0].text == f"{article.title}. {article.paragraphs[0]}"
    bare = llm.chunk_articles([article], with_title=False)
    assert [c.text for c in bare] == list(article.paragraphs)


def test_window_chunks_have_the_size_and_overlap_asked_and_cover_every_word():
    article = llm.corpus()[0]
    words = " ".join(article.paragraphs).split()
    chunks = llm.chunk_articles([article], "window", size=20, overlap=5, with_title=False)
    parts = [c.text.split() for c in chunks]
    assert all(len(p) == 20 for p in parts[:-1]) and 0 < len(parts[-1]) <= 20
    for before, after in zip(parts, parts[1:], strict=False):
        assert before[-5:] == after[:5]
    assert parts[-1][-1] == words[-1]
    assert parts[0] + [w for p in parts[1:] for w in p[5:]] == words


@pytest.mark.parametrize("kwargs, error", [
    ({"method": "sentences"}, UnknownNameError),
    ({"method": "window", "size": 5}, InvalidParameterError),
    ({"method": "window", "size": 20, "overlap": 20}, InvalidParameterError),
    ({"with_title": 1}, InvalidParameterError),
])
def test_chunking_refuses_bad_parameters(kwargs, error):
    with pytest.raises(error):
        llm.chunk_articles(llm.corpus()[:1], **kwargs)


def test_chunking_refuses_what_is_not_articles():
    with pytest.raises(InvalidParameterError, match="Article"):
        llm.chunk_articles(["text"])


# --------------------------------------------------------------------------- questions


def test_question_set_is_deterministic_labelled_and_grouped():
    first, again = llm.question_set(60, seed=3), llm.question_set(60, seed=3)
    assert first == again
    assert first != llm.question_set(60, seed=4)
    ids = {a.article_id for a in llm.corpus()}
    assert all(q.relevant[0] in ids and q.group.startswith(q.relevant[0] + "/") for q in first)
    assert [q.question_id for q in first[:2]] == ["q0001", "q0002"]
    frame = llm.question_frame(first)
    assert list(frame.columns) == ["question_id", "text", "relevant", "group"]
    assert len(frame) == 60


def test_question_set_respects_the_corpus_version_and_the_articles_asked():
    august = llm.question_set(300, seed=0, corpus_version="2025-08")
    assert llm.PRICE_RISE_ARTICLE not in {q.relevant[0] for q in august}
    only = llm.question_set(20, seed=0, articles=["cancel-how"])
    assert {q.relevant for q in only} == {("cancel-how",)}
    with pytest.raises(InvalidParameterError, match="not in corpus 2025-08"):
        llm.question_set(20, corpus_version="2025-08", articles=[llm.PRICE_RISE_ARTICLE])
    with pytest.raises(InvalidParameterError):
        llm.question_set(5)


def test_reword_keeps_the_question_and_is_seeded():
    rng = np.random.default_rng(0)
    text = llm.reword("how do I cancel my subscription", rng, swap_probability=1.0)
    assert "cancel" not in text and "subscription" not in text and "how do I" in text
    assert text == llm.reword("how do I cancel my subscription", np.random.default_rng(0),
                              swap_probability=1.0)
    with pytest.raises(InvalidParameterError):
        llm.reword("", rng)


# --------------------------------------------------------------------------- retrieval


def _chunks(*texts):
    return [llm.Chunk(f"d{i}#0", f"d{i}", f"D{i}", t) for i, t in enumerate(texts)]


def test_tokenize_keeps_prices_and_drops_common_words():
    assert llm.tokenize("Why did my bill go up to 14.99?") == ["did", "bill", "14.99"]
    assert llm.tokenize("L-300 error") == ["l-300", "error"]


def test_bm25_matches_a_hand_computed_example():
    chunks = _chunks("cat cat dog", "dog", "bird cat")
    bm25 = llm.Bm25Retriever(chunks, k1=1.2, b=0.75)
    # N = 3, lengths 3, 1, 2 (mean 2); df: cat 2, dog 2, bird 1
    idf_cat = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    idf_dog = idf_cat
    norm = [1.2 * (1 - 0.75 + 0.75 * n / 2) for n in (3, 1, 2)]
    expected = [
        idf_cat * 2 * 2.2 / (2 + norm[0]) + idf_dog * 1 * 2.2 / (1 + norm[0]),
        idf_dog * 1 * 2.2 / (1 + norm[1]),
        idf_cat * 1 * 2.2 / (1 + norm[2]),
    ]
    assert bm25.scores(["cat dog"])[0] == pytest.approx(expected, rel=1e-12)
    assert bm25.scores(["cat cat dog unknown"])[0] == pytest.approx(expected, rel=1e-12)
    # the short chunk "dog" beats "bird cat": same idf, less length to normalise
    assert [h.chunk_id for h in bm25.search("cat dog", k=3)] == ["d0#0", "d1#0", "d2#0"]
    assert [h.chunk_id for h in bm25.search("bird dog", k=3)][0] == "d2#0"


def test_tfidf_retriever_scores_as_scikit_learn():
    chunks = [c for c in llm.chunk_articles(llm.corpus())]
    retriever = llm.TfidfRetriever(chunks)
    vectorizer = TfidfVectorizer(tokenizer=llm.tokenize, lowercase=False, token_pattern=None,
                                 sublinear_tf=True)
    matrix = vectorizer.fit_transform([c.text for c in chunks])
    query = "how do I cancel my plan"
    expected = (vectorizer.transform([query]) @ matrix.T).toarray()[0]
    assert retriever.scores([query])[0] == pytest.approx(expected, abs=1e-12)
    top = retriever.search(query, k=1)[0]
    assert top.chunk_id == chunks[int(np.argmax(expected))].chunk_id
    assert 0 < top.score <= 1


def test_search_breaks_ties_by_chunk_order_and_caps_k():
    retriever = llm.Bm25Retriever(_chunks("alpha", "beta", "gamma"))
    hits = retriever.search("delta", k=10)
    assert [h.chunk_id for h in hits] == ["d0#0", "d1#0", "d2#0"]
    assert [h.rank for h in hits] == [1, 2, 3] and all(h.score == 0 for h in hits)
    assert retriever.search_many([], k=2) == []


@pytest.mark.parametrize("make, error", [
    (lambda: llm.Bm25Retriever([]), InvalidParameterError),
    (lambda: llm.Bm25Retriever(_chunks("a") * 2), InvalidParameterError),
    (lambda: llm.Bm25Retriever(_chunks("a"), k1=0), InvalidParameterError),
    (lambda: llm.Bm25Retriever(_chunks("a"), b=1.5), InvalidParameterError),
    (lambda: llm.make_retriever("dense", _chunks("a")), UnknownNameError),
    (lambda: llm.Bm25Retriever(_chunks("a")).search("x", k=0), InvalidParameterError),
    (lambda: llm.Bm25Retriever(_chunks("a")).search(""), InvalidParameterError),
    (lambda: llm.Bm25Retriever(_chunks("a")).search_many("abc"), InvalidParameterError),
])
def test_retrievers_refuse_bad_input(make, error):
    with pytest.raises(error):
        make()


# --------------------------------------------------------------------------- quality


def test_score_questions_measures_recall_and_reciprocal_rank():
    chunks = _chunks("cancel your plan", "pay by card", "cancel fee card")
    questions = [llm.Question("q1", "pay card", ("d1",), "g1"),
                 llm.Question("q2", "cancel fee", ("d2",), "g2"),
                 llm.Question("q3", "pay card", ("d0",), "g3")]
    frame = llm.score_questions(llm.Bm25Retriever(chunks), questions, k=1)
    assert frame["recall"].tolist() == [1.0, 1.0, 0.0]
    assert frame["reciprocal_rank"].tolist() == pytest.approx([1.0, 1.0, 1 / 3])
    assert frame["top_article"].tolist() == ["d1", "d2", "d1"]
    with pytest.raises(InvalidParameterError):
        llm.score_questions(llm.Bm25Retriever(chunks), questions, k=0)
    with pytest.raises(InvalidParameterError):
        llm.score_questions(object(), questions)


def _frame(values, groups=None):
    n = len(values)
    return pd.DataFrame({"question_id": [f"q{i}" for i in range(n)],
                         "group": groups or [f"g{i}" for i in range(n)],
                         "recall": values})


def test_mean_interval_resamples_groups_and_holds_the_mean():
    flat = llm.mean_interval(_frame([1.0] * 10))
    assert (flat.value, flat.low, flat.high) == (1.0, 1.0, 1.0)
    est = llm.mean_interval(_frame([1.0, 0.0] * 20), seed=1)
    assert isinstance(est, Estimate) and est.value == 0.5 and est.low < 0.5 < est.high
    # the same values in 2 groups of 20 identical answers: far wider than 40 independent ones
    grouped = llm.mean_interval(_frame([1.0] * 20 + [0.0] * 20, ["a"] * 20 + ["b"] * 20))
    assert grouped.high - grouped.low > 2 * (est.high - est.low)


def test_paired_difference_cancels_what_the_questions_share():
    rng = np.random.default_rng(0)
    base = rng.random(100)
    a, b = _frame(list(base + 0.05)), _frame(list(base))
    diff = llm.paired_difference(a, b, "recall")
    assert diff.value == pytest.approx(0.05) and diff.low == pytest.approx(0.05)
    assert diff.p_value == 0.0
    same = llm.paired_difference(b, b, "recall")
    assert (same.value, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(InvalidParameterError, match="same questions"):
        llm.paired_difference(a, _frame(list(base[:50])), "recall")
    with pytest.raises(InvalidParameterError, match="missing"):
        llm.paired_difference(a, b, "missing")


def test_verdict_says_only_what_the_interval_supports():
    assert llm.verdict(Estimate(0.1, 0.02, 0.2), "b", "a") == "b is higher than a"
    assert llm.verdict(Estimate(-0.1, -0.2, -0.01), "b", "a") == "b is lower than a"
    assert llm.verdict(Estimate(0.1, -0.01, 0.2), "b", "a") == "b and a are not told apart"
    with pytest.raises(InvalidParameterError):
        llm.verdict(0.1, "b", "a")


# --------------------------------------------------------------------------- configuration


def test_config_version_is_a_stable_hash_of_its_values():
    assert llm.PRODUCTION_CONFIG.version == "10b4e75ee83a"  # same on every machine
    renamed = llm.RagConfig(**llm.PRODUCTION_CONFIG.parameters(), name="other")
    assert renamed.version == llm.PRODUCTION_CONFIG.version
    changed = llm.RagConfig(**{**llm.PRODUCTION_CONFIG.parameters(), "top_k": 4})
    assert changed.version != llm.PRODUCTION_CONFIG.version
    assert llm.RagConfig(min_score=3).min_score == 3.0


def test_config_record_round_trips_and_refuses_an_edited_record():
    record = llm.PRODUCTION_CONFIG.to_dict()
    assert record["schema"] == llm.CONFIG_SCHEMA
    assert llm.RagConfig.from_dict(json.loads(json.dumps(record))) == llm.PRODUCTION_CONFIG
    with pytest.raises(InvalidParameterError, match="changed after it was written"):
        llm.RagConfig.from_dict({**record, "top_k": 3})
    with pytest.raises(InvalidParameterError, match="missing"):
        llm.RagConfig.from_dict({k: v for k, v in record.items() if k != "top_k"})
    with pytest.raises(InvalidParameterError, match="schema"):
        llm.RagConfig.from_dict({**record, "schema": "x"})


@pytest.mark.parametrize("kwargs, error", [
    ({"retriever": "dense"}, UnknownNameError),
    ({"chunking": "sentence"}, UnknownNameError),
    ({"corpus_version": "2024-01"}, UnknownNameError),
    ({"top_k": 0}, InvalidParameterError),
    ({"chunk_size": 30, "chunk_overlap": 30}, InvalidParameterError),
    ({"min_score": -1.0}, InvalidParameterError),
    ({"prompt_version": 0}, InvalidParameterError),
    ({"with_title": "yes"}, InvalidParameterError),
    ({"name": ""}, InvalidParameterError),
])
def test_config_refuses_bad_values(kwargs, error):
    with pytest.raises(error):
        llm.RagConfig(**kwargs)


# --------------------------------------------------------------------------- generation


def _hit(score, text="Title. First sentence here. Second one about fees.", article="a"):
    return llm.Hit(1, f"{article}#0", article, score, text, "Title")


def test_fill_prompt_needs_exactly_the_placeholders():
    assert llm.fill_prompt("{{ question }}!", question="why") == "why!"
    with pytest.raises(InvalidParameterError, match="placeholders"):
        llm.fill_prompt(TEMPLATE, question="why")
    with pytest.raises(InvalidParameterError, match="placeholders"):
        llm.fill_prompt("{{question}}", question="why", extra="x")


def test_request_key_depends_on_prompt_version_question_and_context():
    base = llm.GenerationRequest(1, "p", "q", (_hit(5.0),))
    assert base.key == llm.GenerationRequest(1, "other prompt text", "q", (_hit(9.0),)).key
    assert base.key != llm.GenerationRequest(2, "p", "q", (_hit(5.0),)).key
    assert base.key != llm.GenerationRequest(1, "p", "q2", (_hit(5.0),)).key
    assert base.key != llm.GenerationRequest(1, "p", "q", (_hit(5.0, article="b"),)).key
    with pytest.raises(InvalidParameterError):
        llm.GenerationRequest(0, "p", "q", ())
    with pytest.raises(InvalidParameterError):
        llm.GenerationRequest(1, "p", "q", [_hit(1.0)])


def test_extractive_client_answers_from_the_best_chunk_or_refuses():
    client = llm.ExtractiveClient(min_score=2.0, max_sentences=1)
    answer = client.generate(llm.GenerationRequest(1, "p", "what fees", (_hit(5.0),)))
    assert answer == "Second one about fees. [a]"
    assert llm.ExtractiveClient(2.0).generate(
        llm.GenerationRequest(1, "p", "what fees", (_hit(5.0),))
    ) == "First sentence here. Second one about fees. [a]"
    refused = client.generate(llm.GenerationRequest(1, "p", "what fees", (_hit(1.9),)))
    assert refused == llm.REFUSAL and llm.is_refusal(refused)
    assert client.generate(llm.GenerationRequest(1, "p", "q", ())) == llm.REFUSAL
    with pytest.raises(InvalidParameterError):
        llm.ExtractiveClient(min_score=-1)
    with pytest.raises(InvalidParameterError):
        client.generate("a request")


def test_recorded_client_replays_and_refuses_clearly_on_a_miss(tmp_path):
    requests = [llm.GenerationRequest(2, "p", q, (_hit(5.0),)) for q in ("fees?", "other")]
    path = llm.record_responses(tmp_path / "rec.json", requests, llm.ExtractiveClient(1.0))
    first_bytes = path.read_bytes()
    llm.record_responses(path, requests, llm.ExtractiveClient(1.0))
    assert path.read_bytes() == first_bytes
    client = llm.RecordedClient(path)
    assert len(client) == 2 and client.recorded_by == "extractive"
    assert client.generate(requests[0]) == llm.ExtractiveClient(1.0).generate(requests[0])
    with pytest.raises(UnknownNameError, match=r"recorded with prompt version\(s\) \[2\]"):
        client.generate(llm.GenerationRequest(1, "p", "fees?", (_hit(5.0),)))
    with pytest.raises(UnknownNameError, match="never recorded"):
        client.generate(llm.GenerationRequest(2, "p", "new question", (_hit(5.0),)))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InvalidParameterError, match="not a recordings file"):
        llm.RecordedClient(tmp_path / "bad.json")
    with pytest.raises(InvalidParameterError, match="no recordings file"):
        llm.RecordedClient(tmp_path / "absent.json")
    with pytest.raises(InvalidParameterError, match="client"):
        llm.record_responses(tmp_path / "x.json", requests, object())


def test_the_committed_recordings_are_what_the_record_command_writes(tmp_path):
    out = tmp_path / "recordings.json"
    assert record_main(["record", "--out", str(out)]) == 0
    assert out.read_bytes() == llm.RECORDINGS.read_bytes()


def test_assistant_answers_refuses_and_swaps_clients():
    assistant = llm.Assistant(llm.PRODUCTION_CONFIG, TEMPLATE)
    response = assistant.ask("how do I turn on subtitles")
    assert response.hits[0].article_id == "streaming-audio-subtitles"
    assert response.answer.endswith("[streaming-audio-subtitles]") and not response.refused
    assert response.config_version == llm.PRODUCTION_CONFIG.version
    assert len(response.hits) == llm.PRODUCTION_CONFIG.top_k
    off_topic = assistant.ask("what is the weather in paris tomorrow")
    assert off_topic.refused and off_topic.top_score < llm.PRODUCTION_CONFIG.min_score
    request = assistant.requests(["how do I turn on subtitles"])[0]
    assert "Question: how do I turn on subtitles" in request.prompt
    assert "[streaming-audio-subtitles]" in request.prompt
    replay = assistant.with_client(llm.RecordedClient())
    with pytest.raises(UnknownNameError):
        replay.ask("how do I turn on subtitles")
    with pytest.raises(InvalidParameterError, match="placeholders"):
        llm.Assistant(llm.PRODUCTION_CONFIG, "no placeholders")
    with pytest.raises(InvalidParameterError):
        llm.Assistant("config", TEMPLATE)
    with pytest.raises(InvalidParameterError):
        assistant.with_client(object())
