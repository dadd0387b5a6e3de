"""Lumen's help centre: the articles the assistant answers from, and the questions they answer.

The project wrote these texts for the book; they describe the simulated video service of
:mod:`companion.data` (its three plans and their prices, the price rise of September 2025, the
partner bundle, the new TV app). Each article has an id, a title, a category, paragraphs
separated by blank lines and ``added``, the month it was published: the corpus of a month
holds the articles added up to it (:func:`companion.llm.chunking.corpus`).

:data:`QUESTION_SEEDS` holds, for each article, a few questions a customer would ask whose
answer is in it, worded the way customers write (often not in the article's own words).
:mod:`companion.llm.questions` turns them into the labelled question set.
"""

from __future__ import annotations

ARTICLE_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    # (id, title, category, added, body): paragraphs separated by a blank line
    ("billing-date", "When you are billed", "billing", "2025-01", """
Lumen bills your plan once a month, on the same day of the month you first subscribed. If you
signed up on the 31st, months with fewer days bill on their last day.

Your billing date is shown under Account, then Billing. The charge appears on your bank
statement as LUMEN VIDEO within two working days."""),
    ("billing-receipts", "Receipts and invoices", "billing", "2025-01", """
Every payment creates a receipt. Open Account, then Billing history, and choose a month to
download its invoice as a PDF.

Invoices show your plan, the amount, the tax included and the payment method. Business
customers can add a company name and VAT number before downloading."""),
    ("billing-double-charge", "Charged twice", "billing", "2025-01", """
If two charges appear for the same month, one is usually a pending authorisation that your
bank releases within five working days. It is not taken from your account.

If both charges are still there after five working days, contact support with the date and
amount of each charge and we refund the duplicate within three working days."""),
    ("billing-refunds", "Refunds", "billing", "2025-01", """
Lumen does not refund the part of a month already started when you cancel: your plan stays
active until the end of the billing period.

We refund duplicate charges, charges after a confirmed cancellation and charges during a
service outage longer than 24 hours. Refunds reach your card in five to ten working days."""),
    ("billing-currency-tax", "Currency and tax", "billing", "2025-01", """
Prices are shown and charged in your local currency, with sales tax or VAT included where the
law requires it.

If you move to another country, your plan switches to that country's price at your next
billing date. Your bank may add a foreign transaction fee for cards issued abroad."""),
    ("billing-gift-cards", "Gift cards", "billing", "2025-01", """
Lumen gift cards pay for your plan until their balance runs out. Redeem one under Account,
then Redeem a code; the balance is used before your card is charged.

Gift cards do not expire and cannot be exchanged for cash. A gift card cannot pay for a
partner bundle."""),
    ("plans-overview", "Lumen's plans", "plans", "2025-01", """
Lumen has three plans. Basic costs 7.99 a month: HD on one screen at a time. Standard costs
12.99: Full HD on two screens. Premium costs 17.99: 4K Ultra HD and HDR on four screens.

Every plan includes the whole catalogue, no adverts and cancellation at any time. Downloads
are included on Standard and Premium."""),
    ("plans-change", "Changing your plan", "plans", "2025-01", """
You can upgrade or downgrade under Account, then Plan. An upgrade starts at once and you pay
the difference for the rest of the month.

A downgrade starts at your next billing date; until then you keep your current plan's
quality and screens."""),
    ("plans-screens", "How many screens at once", "plans", "2025-01", """
The number of screens is how many devices can stream at the same time: one on Basic, two on
Standard, four on Premium.

If you see the message too many people are using your account, stop playback on another
device or upgrade your plan. Downloads count against a separate limit of devices."""),
    ("plans-students", "Student discount", "plans", "2025-01", """
Students in higher education get 30% off the Standard plan for twelve months. Verify your
status with your university email under Account, then Offers.

The discount renews each year while you remain a student. It cannot be combined with a
partner bundle or another offer."""),
    ("plans-annual", "Paying yearly", "plans", "2025-01", """
Standard and Premium can be paid yearly for the price of ten months. The year is charged at
once and renews automatically.

If you cancel a yearly plan within fourteen days of its renewal you get a full refund; after
that it stays active until the end of the year."""),
    ("price-rise-2025", "The September 2025 price change", "plans", "2025-09", """
From 1 September 2025 the Standard plan costs 14.99 a month instead of 12.99, and Premium
costs 21.99 instead of 17.99. Basic stays at 7.99.

Existing subscribers pay the new price from their first billing date after 1 September. We
emailed every affected subscriber thirty days before the change.

If you do not want to pay the new price you can move to Basic or cancel before your billing
date at no cost. Yearly plans keep their old price until they renew."""),
    ("payments-methods", "Ways to pay", "payments", "2025-01", """
Lumen accepts debit and credit cards (Visa, Mastercard, American Express), PayPal and gift
cards. In some countries you can also pay through your mobile phone bill.

Change your payment method under Account, then Payment. The new method is used from your
next billing date."""),
    ("payments-failed", "When a payment fails", "payments", "2025-01", """
If a payment fails we try again three times over seven days and email you each time. Your
plan keeps working during those seven days.

Common causes are an expired card, insufficient funds or a bank blocking an online payment.
Update your card under Account, then Payment, and we retry at once."""),
    ("payments-on-hold", "Account on hold", "payments", "2025-01", """
If every retry of a payment fails, your account goes on hold: you can sign in, but you cannot
watch until the payment succeeds.

Your profiles, watch history and downloads are kept for ten months. Pay the outstanding
amount under Account, then Payment, and streaming comes back within minutes."""),
    ("payments-card-expired", "Updating an expired card", "payments", "2025-01", """
When your card is about to expire we email you a month before. Add the new expiry date or a
new card under Account, then Payment.

Some banks send updated card details to us automatically; if so, you do not need to do
anything."""),
    ("payments-declined-3ds", "Bank verification (3-D Secure)", "payments", "2025-01", """
Some banks ask you to confirm a payment in their app or by a text message code. If you do not
confirm within ten minutes, the payment is declined.

Approve the request in your banking app and try again under Account, then Payment. If no
request arrives, ask your bank to allow payments to LUMEN VIDEO."""),
    ("streaming-buffering", "Buffering and slow loading", "streaming", "2025-01", """
Buffering means the video arrives slower than it plays. Lumen lowers the quality
automatically to keep playing; a spinning circle means the connection dropped below 1 Mbps.

Restart your router, move closer to it or connect by cable. Other devices downloading at the
same time on your network slow streaming down."""),
    ("streaming-quality", "Picture quality", "streaming", "2025-01", """
Lumen adapts the picture to your connection: HD needs 5 Mbps, Full HD 8 Mbps and 4K 25 Mbps.
Your plan sets the highest quality you can get.

To force the best picture, open Settings, then Playback, and choose High. On mobile data the
app uses Saver mode unless you change it."""),
    ("streaming-4k-hdr", "Watching in 4K and HDR", "streaming", "2025-01", """
4K and HDR need the Premium plan, a 4K screen, a device that supports them and a connection
of at least 25 Mbps.

Titles available in 4K show a 4K badge. On a computer, 4K plays in the desktop app and in
some browsers only."""),
    ("streaming-audio-subtitles", "Audio and subtitles", "streaming", "2025-01", """
Choose the audio language and subtitles from the speech bubble icon while a title plays. Your
choice is remembered for the next episode.

Audio description is available for many titles. Subtitle size and colour can be changed under
Settings, then Accessibility."""),
    ("streaming-errors", "Playback error codes", "streaming", "2025-01", """
Error L-100 means the app could not reach Lumen: check your internet connection. Error L-200
means the title is not available in your region.

Error L-300 means your device's app is out of date: update it from the app store. For any
other code, restart the device and try again."""),
    ("streaming-downloads", "Downloads for offline viewing", "streaming", "2025-01", """
On Standard and Premium you can download titles on up to two phones or tablets. Look for the
download arrow next to an episode.

Downloads stay for 30 days, or 48 hours after you start watching. Some titles cannot be
downloaded because of rights agreements."""),
    ("streaming-outage", "Service outages", "streaming", "2025-01", """
When Lumen is down for everyone, the status page at status.lumen.example says so and gives
the time of the next update.

An outage longer than 24 hours is refunded automatically as a credit on your next bill. You
do not need to contact support."""),
    ("account-password", "Resetting your password", "account", "2025-01", """
Choose Forgot password on the sign-in screen and enter your email. The reset link is valid
for one hour.

If the email does not arrive, check your spam folder. For safety, resetting your password
signs you out of every device."""),
    ("account-email", "Changing your email", "account", "2025-01", """
Change your email under Account, then Profile. We send a confirmation link to the new address
and a notice to the old one.

Until you confirm, sign-in still uses the old address."""),
    ("account-profiles", "Profiles", "account", "2025-01", """
An account can have up to five profiles, each with its own watch history, list and
recommendations.

Kids profiles show only titles rated for children and can be locked with a PIN under Settings,
then Parental controls."""),
    ("account-parental", "Parental controls", "account", "2025-01", """
Set a maturity rating for each profile and lock profiles with a four-digit PIN under Settings,
then Parental controls.

You can also block single titles. Changes apply on every device within a few minutes."""),
    ("account-signed-out", "Signed out of devices", "account", "2025-01", """
Lumen signs you out everywhere after a password reset. You can also do it yourself under
Account, then Security, then Sign out of all devices.

If you see sign-ins you do not recognise, reset your password and turn on two-step
verification."""),
    ("account-two-step", "Two-step verification", "account", "2025-01", """
Two-step verification asks for a code from an authenticator app or a text message when you
sign in on a new device.

Turn it on under Account, then Security. Keep the backup codes somewhere safe: they are the
only way in if you lose your phone."""),
    ("account-privacy", "Your data and privacy", "account", "2025-01", """
Lumen keeps your watch history to make recommendations. You can download a copy of your data
under Account, then Privacy.

You can ask us to delete your account and all its data; deletion is final after 30 days."""),
    ("devices-supported", "Supported devices", "devices", "2025-01", """
Lumen works on smart TVs from 2018 on, streaming sticks, games consoles, phones and tablets
with iOS 16 or Android 10 and later, and in current web browsers.

Older devices may still play but no longer get updates or new features."""),
    ("devices-tv-app", "The new TV app", "devices", "2025-01", """
The new Lumen TV app has a faster home screen and lets you resume where you stopped on any
device. It installs automatically on supported smart TVs.

If your TV still shows the old app, update the TV's software, then remove and reinstall
Lumen."""),
    ("devices-casting", "Casting to a TV", "devices", "2025-01", """
You can cast from the phone app to a TV with Chromecast or AirPlay. Phone and TV must be on
the same Wi-Fi network.

If the cast icon does not appear, restart both devices and check that the TV allows casting
in its settings."""),
    ("devices-manage", "Managing your devices", "devices", "2025-01", """
See every device signed in to your account under Account, then Devices, and remove the ones
you no longer use.

Removing a device signs it out and deletes its downloads."""),
    ("devices-sign-in-tv", "Signing in on a TV", "devices", "2025-01", """
On a TV, choose Sign in and the app shows a code. Go to lumen.example/tv on your phone or
computer and enter the code.

The code is valid for ten minutes. You can also scan the QR code the TV shows."""),
    ("cancel-how", "Cancelling your plan", "cancelling", "2025-01", """
Cancel at any time under Account, then Plan, then Cancel. There is no fee and no notice
period.

Your plan stays active until the end of the billing period you have paid for, and we email a
confirmation of the cancellation."""),
    ("cancel-pause", "Pausing instead of cancelling", "cancelling", "2025-01", """
You can pause your plan for one, two or three months under Account, then Plan. Nothing is
charged while it is paused.

Your profiles and history are kept, and the plan restarts automatically at the end of the
pause."""),
    ("cancel-restart", "Coming back after cancelling", "cancelling", "2025-01", """
Restart your plan at any time by signing in and choosing a plan. Profiles, lists and watch
history are kept for ten months after you cancel.

Offers for new customers do not apply to returning subscribers."""),
    ("bundle-partner", "Lumen through a partner bundle", "plans", "2025-06", """
Some phone and broadband providers include Lumen Basic in their packages. The partner bills
you; Lumen does not charge your card.

To upgrade a bundled plan, or to cancel it, contact your provider: changes made with Lumen
end the bundle and start a paid plan."""),
)


"""Every article the project wrote: ``(id, title, category, added, body)``."""

QUESTION_SEEDS: dict[str, tuple[str, ...]] = {
    "billing-date": ("what day of the month do you take the money",
                     "when will I be charged for my subscription",
                     "how do I find my billing date"),
    "billing-receipts": ("where can I download an invoice",
                         "I need a receipt for my payment with VAT for my company",
                         "how to get a pdf of my bill"),
    "billing-double-charge": ("I was charged twice this month",
                              "there are two payments from lumen on my bank statement",
                              "duplicate charge pending on my card"),
    "billing-refunds": ("can I get my money back if I cancel mid month",
                        "how long does a refund take to reach my card",
                        "do you refund the rest of the month"),
    "billing-currency-tax": ("why am I charged in a different currency",
                             "is tax included in the price",
                             "I moved abroad, what will I pay"),
    "billing-gift-cards": ("how do I redeem a gift card",
                           "does my gift card expire",
                           "can I pay with a voucher code"),
    "plans-overview": ("what plans do you have and how much are they",
                       "which plan has 4k",
                       "difference between basic standard and premium"),
    "plans-change": ("how do I upgrade to premium",
                     "when does a downgrade take effect",
                     "switch my plan to a cheaper one"),
    "plans-screens": ("it says too many people are using my account",
                      "how many devices can watch at the same time",
                      "can my family stream on several tvs at once"),
    "plans-students": ("is there a student discount",
                       "do you have cheaper prices for university students",
                       "how to verify that I am a student"),
    "plans-annual": ("can I pay for a whole year",
                     "is the yearly plan cheaper",
                     "refund of an annual subscription"),
    "price-rise-2025": ("why did my bill go up in september",
                        "the price of standard went up to 14.99, why",
                        "how much will premium cost after the price increase",
                        "can I keep the old price",
                        "my subscription is more expensive now"),
    "payments-methods": ("can I pay with paypal",
                         "which cards do you accept",
                         "change how I pay"),
    "payments-failed": ("my payment failed",
                        "why was my card declined",
                        "what happens if you cannot take the payment"),
    "payments-on-hold": ("my account is on hold and I cannot watch",
                         "I can log in but videos will not play after a failed payment",
                         "will I lose my profiles if my account is suspended"),
    "payments-card-expired": ("my card expired, how do I update it",
                              "new card with a new expiry date",
                              "do I need to enter my renewed card"),
    "payments-declined-3ds": ("my bank asks me to confirm the payment in the app",
                              "I never received the text code from my bank",
                              "3d secure keeps failing"),
    "streaming-buffering": ("the video keeps buffering",
                            "stream stops and a spinning circle appears",
                            "why is lumen so slow to load"),
    "streaming-quality": ("the picture is blurry",
                          "how do I get the best video quality",
                          "what internet speed do I need for hd"),
    "streaming-4k-hdr": ("how do I watch in 4k",
                         "hdr is not working on my tv",
                         "why can I not get ultra hd"),
    "streaming-audio-subtitles": ("how do I turn on subtitles",
                                  "change the language of the audio",
                                  "make the captions bigger"),
    "streaming-errors": ("what does error L-200 mean",
                         "I get error code L-300",
                         "error L-100 when I open the app"),
    "streaming-downloads": ("how do I download episodes to watch on a plane",
                            "my downloads disappeared",
                            "how long do offline downloads last"),
    "streaming-outage": ("is lumen down right now",
                         "will I get compensation for the outage",
                         "where is the status page"),
    "account-password": ("I forgot my password",
                         "the reset link expired",
                         "how do I reset my login"),
    "account-email": ("how do I change my email address",
                      "update the email on my account",
                      "I cannot sign in with my new email"),
    "account-profiles": ("how many profiles can I create",
                         "make a separate profile for my kids",
                         "add another user to my account"),
    "account-parental": ("how do I lock a profile with a pin",
                         "block adult content for my children",
                         "set an age rating for a profile"),
    "account-signed-out": ("why was I logged out on all my devices",
                           "someone else is using my account",
                           "log out everywhere"),
    "account-two-step": ("how do I turn on two factor authentication",
                         "I lost my phone and cannot get the sign in code",
                         "where are my backup codes"),
    "account-privacy": ("how do I delete my account and my data",
                        "can I download a copy of my data",
                        "what do you do with my viewing history"),
    "devices-supported": ("does lumen work on my old tv",
                          "which android version do I need",
                          "can I watch on a playstation"),
    "devices-tv-app": ("my tv still has the old app",
                       "how do I get the new tv app",
                       "the tv app looks different"),
    "devices-casting": ("how do I cast from my phone to the tv",
                        "the chromecast icon is missing",
                        "can I use airplay"),
    "devices-manage": ("see which devices are signed in",
                       "remove an old phone from my account",
                       "delete a device I sold"),
    "devices-sign-in-tv": ("how do I log in on my smart tv",
                           "where do I enter the code shown on the tv",
                           "the tv activation code expired"),
    "cancel-how": ("how do I cancel my subscription",
                   "is there a fee to end my membership",
                   "stop my lumen plan"),
    "cancel-pause": ("can I pause my subscription for a month",
                     "take a break without cancelling",
                     "suspend payments while I travel"),
    "cancel-restart": ("how do I come back after cancelling",
                       "will my watch history still be there if I rejoin",
                       "reactivate my old account"),
    "bundle-partner": ("I get lumen through my phone provider, how do I upgrade",
                       "cancel lumen that came with my broadband",
                       "who bills me for the partner bundle"),
}
"""Questions each article answers, in customers' words (keys are article ids)."""
