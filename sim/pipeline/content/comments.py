"""The comment grammar: sim's own phrasings for each intent (and reply stance).

Every top-level template names the video's topic (``{t}``), so each comment is on topic;
niche rules (``ask``, ``tip``, ``gripe``, ``joke``) come from the niche and name it too.
"""

from __future__ import annotations

__all__ = ["COMMENT_RULES"]

COMMENT_RULES: dict[str, list[str]] = {
    # --- intents: a body, with an opening and a closing half of the time ---------------
    "praise": ["{|{praise_pre}|{praise_pre}} {praise_body} {|{praise_post}|{praise_post}}"],
    "question": [
        "{|{question_pre}|{question_pre}} {question_body} {|{question_post}|{question_post}}"
    ],
    "suggestion": [
        "{|{suggestion_pre}|{suggestion_pre}} {suggestion_body} "
        "{|{suggestion_post}|{suggestion_post}}"
    ],
    "criticism": [
        "{|{criticism_pre}|{criticism_pre}} {criticism_body} {|{criticism_post}|{criticism_post}}"
    ],
    "joke": ["{|{joke_pre}|{joke_pre}} {joke_body} {|{joke_post}|{joke_post}}"],
    "spam": ["{spam_body} {|{spam_post}|{spam_post}}"],
    "suggestion_pre": [
        "{Love the channel!|Great video!|Big fan here.|Hi!|Okay,|Honest feedback:|One thing:}",
        "{Been watching for {a while|years|months}|Long-time viewer} and{,|} {I love it.|one "
        "idea.}",
    ],
    "criticism_pre": [
        "{Hmm.|Not gonna lie,|Honestly?|I usually love your stuff, but|Long-time viewer here, but}",
        "{Okay so|I have to say it:|Unpopular opinion:|Real talk:}",
    ],
    "joke_pre": [
        "{Okay but|Honestly|Lol|Not gonna lie|Me at 2am:|Fun fact:|Update:|True story:}",
        "{Day {2|3|4|5|12|40} of|Week {2|3} of} {watching this|rewatching this}:",
    ],
    "spam_post": [
        "{💰|📈|🚀|✅|⭐}{💰|📈|🚀|✅|⭐|}",
        "{Limited spots!|Only today!|Don't miss out!|100% legit|Trusted by {500|1,000|2,000}+ "
        "creators}",
    ],
    "praise_pre": [
        "{Okay,|Honestly,|Wow.|Ngl,|Yes!|Omg!|Love this!|Oh my.|Stop!|Wait.|Obsessed.|Not me "
        "crying.}",
        "{First time here and|Long-time watcher here and|Just found your channel and} "
        "{wow!|wow.|yes!|ok wow.}",
    ],
    "praise_post": [
        "{Keep it up!|Subscribed!|Instant save.|You never miss.|Sending this to my sister.}",
        "{Made my {day|week|morning}|Needed this {today|so much|right now}}{!|.| ❤️| 🙏}",
        "{🔥|❤️|😍|👏|🙌|✨|💯}{🔥|❤️|😍|👏|🙌|✨|💯|}{🔥|👏|}",
        "{More {of this|like this} please|Part 2 when?|Can't stop rewatching}{!|.| 🙏}",
        "Greetings from {Brazil|Manila|Toronto|Lagos|Berlin|Mumbai|Sydney|Madrid|Ohio|Dublin}{!| "
        "👋}",
    ],
    "question_pre": [
        "{Hi!|Hey!|Hello!|Hi {creator}!|Love your channel!|New here!|Huge fan!|Hey there,}",
    ],
    "question_post": [
        "{Thanks!|🙏|Thanks in advance!|Would really appreciate an answer.|Love your videos btw.}",
        "{Sorry if someone asked already|Couldn't find it in the comments|Asking before I try "
        "it}{.|!|}",
    ],
    "suggestion_post": [
        "{Just an idea!|Love your work either way.|🙂|Would watch that for sure.|Just saying!}",
        "{Keep it up|Thanks for all the videos|Big fan}{!|.| ❤️}",
    ],
    "criticism_post": [
        "{Sorry.|Just my opinion.|Still a fan though.|😕|No hate.|Just being honest.}",
        "{Used to love|Hope you go back to} the old {videos|style}{.|!|}",
    ],
    "joke_post": [
        "{😂|🤣|💀|😭}{😂|🤣|💀|😭|}",
        "{I'm crying|help|send help|no thoughts, just vibes|I can't breathe|not me}{!| 😂| 💀|}",
    ],
    # --- intent bodies --------------------------------------------------------------------
    "praise_body": [
        "{ts} {part} of the {t} {was_great}{end}",
        "The bit at {ts} in the {t} video {was_great}{end}",
        "{wow} {this_t} {is_good}{end}",
        "{wow} your {t} {looks_good}{end}",
        "{part} in this {t} video {was_great}{end}",
        "I've watched {lots} {field} videos and this {t} one is {superlative}{end}",
        "Finally someone does {t} {detail} {and_it_works}{end}",
        "{t} {detail}?? {impressed}{end}",
        "Been waiting for a {t} video like this{end} {thanks}",
        "This is the {t} content I {followed_for}{end}",
        "{best_part} {part} of the {t}{end}",
        "Saving this {t} {for_later}{end}",
        "The way you {explain} the {t} {is_good}{end}",
        "{thanks} for the {t}, {you_are}{end}",
    ],
    "question_body": [
        "At {ts}, {n_ask}?",
        "What {did you use|was that} at {ts} {in|for} the {t}?",
        "{q_open} {n_ask}?",
        "{n_ask}? {q_close}",
        "{Loved|Great|Nice} {t}! {n_ask}?",
        "{Honest|Real|Serious} question about the {t}: {n_ask}?",
        "{q_open} where can I find more about the {t}?",
        "{n_ask}?? {q_close}",
        "{Is there|Will there be|Any chance of|Are you doing} a {part 2|follow-up|longer "
        "version|sequel} {of|to} the {t}{ coming| soon|}?",
        "{q_open} {n_ask}? {detail_q}",
    ],
    "suggestion_body": [
        "The {t} bit at {ts} deserves its own video",
        "{sugg_open} {n_tip}{end_soft}",
        "{Love|Loved|Really enjoyed} the {t}, {but_maybe} {n_tip}{end_soft}",
        "Request: {n_tip}{end_soft}",
        "{n_tip}, {that_would_help}{end_soft}",
        "Small idea for the next {t} video: {n_tip}",
    ],
    "criticism_body": [
        "The {t} part at {ts} {was_off}{end_neg}",
        "{crit_open} {n_gripe}{end_neg}",
        "{n_gripe}. {crit_close}",
        "Kind of {let_down} by this {t} video, {n_gripe}{end_neg}",
        "{part} {ruined} the {t} for me{end_neg}",
        "Not your best {t} {honestly_neg}, {n_gripe}",
    ],
    "joke_body": [
        "{n_joke} ({ts} had me {dying|crying|on the floor|wheezing})",
        "{n_joke} {laugh}",
        "POV: {n_joke} {laugh}",
        "{n_joke}. {laugh}",
        "Nobody: ... Me: {n_joke} {laugh}",
        "{n_joke}, {send_help} {laugh}",
    ],
    "spam_body": [
        "{spam_praise} {t} {video|content}! {promo} {link}",
        "{🔥🔥|💯💯|👏👏} {t} {promo} {link}",
        "Want more views on your {t} videos? {dm_me}",
        "I make {field} content too, {loved|enjoyed|liked} the {t} one! {follow_back}",
        "{Nice|Great|Dope} {t}! {I post|I also post|We share} {field} {reels|videos|tips} "
        "{daily|every week}, {follow_back}",
        "Who else is here from the {t} trend? {promo} {link}",
        "{Earn|Make} ${200|500|1,000} a day {from home|from your phone} while you watch {t} "
        "videos! {link}",
        "{t} lovers, {promo} {link}",
    ],
    "agree": [
        "{handle} {agreeing}, the {t} {was_great}{end}",
        "{handle} {agreeing}! {part} of the {t} got me too{end}",
        "{handle} {agreeing} about the {t} {laugh}",
        "{handle} {same_here} with the {t}{end}",
    ],
    "answer": [
        "{handle} {answer_open} the {t} {answer_body}",
        "{handle} I tried the {t} {detail} and it {worked}",
        "{handle} {it_is_in} for the {t}",
        "{handle} not the {creator} but {answer_body} on the {t}",
    ],
    "disagree": [
        "{handle} {disagreeing}, the {t} {was_fine}",
        "{handle} {disagreeing}. {part} of the {t} was the best bit",
        "{handle} {hmm}, the {t} {was_fine}, you're being harsh",
        "{handle} {disagreeing}, I did the {t} {detail} and it {worked}",
    ],
    # --- pieces --------------------------------------------------------------------------
    "ts": ["{0|1|2|3|4}:{0|1|2|3|4|5}{0|1|2|3|4|5|6|7|8|9}"],
    "was_off": ["{felt rushed|was confusing|made no sense to me|was way too loud|dragged on}"],
    "wow": [
        "{Wow|Okay wow|Honestly|Not gonna lie|Ngl|Omg|Wait|Yes|Whoa|Okay}[,]",
        "{Obsessed|Amazing|Stunning|Love it}[!]",
    ],
    "this_t": ["{this|that|the} {t} {video|one|clip}", "{this|the} {t}"],
    "is_good": [
        "is {so good|next level|perfect|incredible|exactly what I needed|a masterpiece}",
        "is {so satisfying|unreal|top tier|just beautiful|pure gold|a whole vibe}",
    ],
    "looks_good": [
        "{looks|turned out|came out} {amazing|so good|perfect|unreal|better than any I've seen}",
    ],
    "was_great": [
        "{was|is} {great|perfect|so well done|chef's kiss|everything|gold|hilarious}",
        "{made my day|got me hooked|was the best part|hit different}",
    ],
    "lots": ["{so many|hundreds of|way too many|a lot of|tons of}"],
    "superlative": ["{the best|by far the best|the most useful|the clearest|my favourite}"],
    "and_it_works": ["{and it actually works|and makes it look easy|without the fluff}"],
    "impressed": ["{I'm impressed|No way|Respect|Insane|Genius|Teach me}"],
    "thanks": ["{Thank you|Thanks|Thanks so much|Appreciate it|Thank you for this}"],
    "followed_for": ["{followed you for|signed up for|come here for|needed today}"],
    "best_part": ["{Best part was|I loved|Can we talk about|Rewatched|Obsessed with}"],
    "for_later": ["{for later|for the weekend|for when I need it|to my favourites}"],
    "explain": ["{explain|break down|walk through|show}"],
    "you_are": ["{you're the best|you never miss|this channel is a gem|legend}"],
    "end": ["{!|.|!!| 🔥| ❤️| 🙌| 👏| 😍| 💯| ✨|}"],
    "end_soft": ["{!|.| 🙏| 🙂|}"],
    "end_neg": ["{.| 😕| 🤷| 😬|}"],
    "q_open": [
        "{Quick question|Question|Genuine question|Sorry if this is obvious|Hey {creator}}{,|:}"
    ],
    "q_close": ["{Asking for a friend|Thanks in advance|Would love to know|Need to know 🙏}"],
    "i_struggle": ["{I never manage to|mine never works|I always mess it up|I keep failing}"],
    "detail_q": ["{Thanks!|Would love a follow-up.|Love the channel.|}"],
    "sugg_open": [
        "{You should|Maybe|Idea:|Suggestion:|Next time,|Would love it if you'd|Pro tip:}"
    ],
    "but_maybe": ["{but maybe|next time maybe|one idea:|could you}"],
    "that_would_help": ["{that would help a lot|that would make it perfect|just saying}"],
    "crit_open": ["{Honestly|Not gonna lie|Sorry but|Hate to say it but|Hmm,|Respectfully,|Meh,}"],
    "crit_close": ["{Expected better|Disappointed tbh|Not your best|Used to love these}"],
    "let_down": ["{let down|disappointed|underwhelmed|meh}"],
    "ruined": ["{kind of ruined|distracted from|took away from}"],
    "honestly_neg": ["{honestly|tbh|imo|for me}"],
    "laugh": ["{😂|🤣|💀|lol|lmao|😭|haha|}"],
    "send_help": ["{send help|I'm crying|help|I can't}"],
    "spam_praise": ["{Great|Nice|Amazing|Cool}"],
    "promo": [
        "{Check out|Visit|Follow} my {page|channel|profile} for {more|daily} {field} "
        "{tips|content}",
        "I post {field} {tips|videos} every day, {come say hi|check my profile}",
    ],
    "link": ["{👉 link in bio|🔗 in my bio|👀|➡️ see profile|}"],
    "dm_me": ["{DM me|Message me|Check my bio} for {a promo|real followers|a shoutout} {💰|📈|}"],
    "follow_back": ["{follow for follow?|let's support each other!|sub4sub?} {🙏|🤝|}"],
    "agreeing": ["{exactly|right?!|same|this!|100%|couldn't agree more|facts|so true}"],
    "same_here": ["{same here|me too|felt that|I noticed that too|same experience}"],
    "answer_open": ["{I think|Pretty sure|If I remember right|From what I saw,}"],
    "answer_body": [
        "{is in the description|is pinned in the comments|was explained at the end}",
        "{works fine|worked for me|needs a bit more time than shown}",
    ],
    "worked": ["{worked fine|went great|worked on the first try|was worth it}"],
    "it_is_in": ["{check the description|scroll up, it's pinned|watch the last minute}"],
    "disagreeing": ["{not really|I disagree|nah|hard disagree|not sure about that}"],
    "hmm": ["{hmm|eh|honestly|respectfully}"],
    "was_fine": ["{was fine for me|looked right to me|worked for me|was spot on}"],
}
