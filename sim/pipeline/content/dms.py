"""DM threads: each has a purpose, and its messages follow a script of steps.

A step is (direction, sentiment, rule): ``in`` messages come from the fan, ``out`` ones
are the account's replies. Spam gets no reply; a thread may end before its script does.
"""

from __future__ import annotations

from sim.pipeline.content.mix import Sentiment

__all__ = ["DM_RULES", "SCRIPTS", "Step"]

Step = tuple[str, Sentiment, str]

SCRIPTS: dict[str, tuple[Step, ...]] = {
    "collaboration": (
        ("in", "positive", "collab_pitch"),
        ("out", "positive", "collab_interest"),
        ("in", "positive", "collab_details"),
        ("out", "positive", "collab_confirm"),
        ("in", "positive", "collab_thanks"),
    ),
    "question": (
        ("in", "neutral", "question_ask"),
        ("out", "positive", "question_answer"),
        ("in", "positive", "question_thanks"),
        ("out", "positive", "question_welcome"),
    ),
    "fan_mail": (
        ("in", "positive", "fan_letter"),
        ("out", "positive", "fan_thanks"),
        ("in", "positive", "fan_reply"),
    ),
    "support": (
        ("in", "negative", "support_problem"),
        ("out", "neutral", "support_fix"),
        ("in", "neutral", "support_followup"),
        ("out", "positive", "support_resolved"),
        ("in", "positive", "support_thanks"),
    ),
    "spam": (
        ("in", "neutral", "spam_pitch"),
        ("in", "neutral", "spam_nudge"),
    ),
}

DM_RULES: dict[str, list[str]] = {
    "collab_pitch": [
        "{hi} I'm {first} from {brand}. We love your {t} videos and would like to send you "
        "{offer} for a {deal}. {interested}",
        "{hi} {first} here, partnerships at {brand}. Your {t} content fits our "
        "{field} audience perfectly, would you be open to a {deal}?",
        "{hi} {brand} is launching something for {field} creators and your {t} video "
        "caught our eye. Could we talk about a {deal}?",
    ],
    "collab_interest": [
        "Hi {first}, thanks for reaching out! {sounds_good} What {do_you_have_in_mind}?",
        "Hey! I know {brand}. {sounds_good} Can you send the {brief}?",
        "Thanks {first}! I only partner with brands I'd use myself. {what_is_the_product}",
    ],
    "collab_details": [
        "{great} It's {deliverable} about {t}, {timeline}, and the fee is {fee}. "
        "I'll email the {brief}.",
        "{great} We'd send {offer} and pay {fee} for {deliverable}, {timeline}.",
    ],
    "collab_confirm": [
        "{works_for_me} Send the contract over and I'll {start}.",
        "Deal. {fee_ok} I'll share a draft of the {t} video {timeline}.",
    ],
    "collab_thanks": [
        "{perfect} Contract is in your inbox. {excited} 🙌",
        "Amazing, welcome aboard! The team is {excited_lower}.",
    ],
    "question_ask": [
        "{hi} {loved} your {t} video. {quick} {n_ask}?",
        "{hi} sorry to bother you, {n_ask}? I couldn't find it in the comments.",
        "{hi} I'm trying the {t} {detail} this weekend. {n_ask}?",
    ],
    "question_answer": [
        "Hi {first}! {answer_open} {answer}. {hope_helps}",
        "Great question! {answer}. {more_soon}",
        "Hey! {answer}. Let me know how it goes with the {t}!",
    ],
    "question_thanks": [
        "{thanks} That's exactly what I needed, {will_try} the {t} tonight.",
        "Oh that makes sense, {thanks_lower} 🙏",
        "{thanks} You're the best, I'll send a photo of my {t}!",
    ],
    "question_welcome": [
        "Anytime! {enjoy}",
        "Can't wait to see it! {enjoy}",
        "Happy to help 😊",
    ],
    "fan_letter": [
        "{hi} I just wanted to say your {t} videos {got_me_through}. {thank_you_long}",
        "{hi} I've been following since your first {t} video and {changed}. {thank_you_long}",
        "{hi} not a question, just love. Your {t} video made my {week}. ❤️",
    ],
    "fan_thanks": [
        "This made my day, {first}. {thank_you_back}",
        "Wow, thank you {first}! Messages like this keep me going. {thank_you_back}",
    ],
    "fan_reply": [
        "Can't believe you replied!! {keep_going}",
        "Omg you answered 😭 {keep_going}",
    ],
    "support_problem": [
        "{hi} I bought your {product} but {problem}. {can_you_help}",
        "{hi} the link to the {product} from your {t} video {broken}. {can_you_help}",
        "{hi} I paid for the {product} {days} ago and {problem}.",
    ],
    "support_fix": [
        "So sorry about that, {first}! {fix} Could you check again?",
        "Sorry for the trouble! {fix} Let me know if it still doesn't work.",
    ],
    "support_followup": [
        "Thanks, checking now.",
        "Still not working on my side, {problem_short}.",
        "Okay, I'll try that.",
    ],
    "support_resolved": [
        "I've {resent} the {product} by email, it should be there now. Enjoy!",
        "Fixed it on my end, you should have full access to the {product} now. Sorry again!",
    ],
    "support_thanks": [
        "Got it, thank you for the quick help!",
        "It works now, thanks so much! 🙏",
    ],
    "spam_pitch": [
        "{hi} your {t} page has great potential! We offer {followers} at a {discount}, {link}",
        "Congratulations! Your {t} video was selected for a {prize}. {claim}",
        "{hi} I'm a {field} promoter, I can grow your account to 100k. {dm_rates}",
    ],
    "spam_nudge": [
        "Are you still interested? Offer ends today ⏰",
        "??",
        "Just following up on this 👆",
    ],
    # --- pieces ---------------------------------------------------------------------------
    "hi": ["{Hi|Hey|Hello|Hi there|Hey hey}{!|,}"],
    "offer": ["{our new|a free} {tool}", "a {tool} from our new line"],
    "deal": ["{paid partnership|sponsored video|long-term collaboration|giveaway together}"],
    "interested": ["Interested?", "Let us know if that sounds good!", "Can we share details?"],
    "sounds_good": ["{Sounds interesting.|I'd be open to it.|Happy to hear more.}"],
    "do_you_have_in_mind": ["{did you have in mind|are the deliverables|is the timeline}"],
    "brief": ["{brief|details|media kit request}"],
    "what_is_the_product": ["{What's the product?|Can I try it first?}"],
    "great": ["{Great!|Awesome!|Lovely!|Perfect!}"],
    "deliverable": ["{one dedicated video|a 30-second integration|three stories}"],
    "timeline": ["{in the next two weeks|by the end of the month|early next month}"],
    "fee": ["{$800|$1,200|$1,500|$2,000|$650}"],
    "works_for_me": ["{Works for me!|That works.|Sounds fair.}"],
    "start": ["{start filming|plan the shoot|get started}"],
    "fee_ok": ["{The fee works.|Happy with the terms.}"],
    "perfect": ["{Perfect!|Wonderful!|Fantastic!}"],
    "excited": ["{Can't wait to see it|So excited to work together|Looking forward to it}"],
    "excited_lower": ["{so excited|thrilled|really happy}"],
    "loved": ["{Loved|Just watched|Really enjoyed}"],
    "quick": ["{Quick question:|One question:|Sorry if it's obvious:|}"],
    "answer_open": ["{Good one!|Of course!|Sure!}"],
    "answer": [
        "I used a {tool} for the {t}",
        "for the {t} I'd go {detail}, it's the easiest way",
        "the full details for the {t} are pinned under the video",
    ],
    "hope_helps": ["{Hope that helps!|Good luck!|Have fun with it!}"],
    "more_soon": ["{More on this soon.|I'll do a video on it.|}"],
    "thanks": ["{Thank you!|Thanks so much!|Ahh thank you!}"],
    "thanks_lower": ["{thank you|thanks a lot|appreciate it}"],
    "will_try": ["{going to try|I'll do|trying}"],
    "enjoy": ["{Enjoy!|Have fun!|Tag me if you post it!}"],
    "got_me_through": ["{got me through a tough year|are my favourite thing online}"],
    "changed": ["{it changed how I do things|you inspired me to start my own}"],
    "thank_you_long": ["{Thank you for everything you do.|Keep going!|Much love from Brazil.}"],
    "week": ["{week|day|month}"],
    "thank_you_back": ["{Thanks for watching ❤️|Means a lot!|See you in the next one!}"],
    "keep_going": ["{Keep making these!|Have a great day!|Big fan forever.}"],
    "problem": ["{the download link doesn't work|I never got the email|it says access expired}"],
    "problem_short": ["{same error|the page is blank|no email yet}"],
    "broken": ["{is broken|goes to a 404|doesn't open}"],
    "can_you_help": ["{Can you help?|Any idea?|Please help 😕}"],
    "days": ["{two|three|five} days"],
    "fix": ["{I've reset your access.|I've updated the link.|I found your order.}"],
    "resent": ["{re-sent|sent again|forwarded}"],
    "followers": ["{real followers|organic promotion|10k views}"],
    "discount": ["{70% discount|special price|one-time price}"],
    "link": ["{check my bio|visit our site|DM for details}"],
    "prize": ["{creator award|free promotion|brand deal}"],
    "claim": ["{Click the link in my bio to claim.|Reply with your email to claim.}"],
    "dm_rates": ["{Reply for rates.|Ask me how.|Cheap prices.}"],
}
