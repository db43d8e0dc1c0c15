"""Wording for the synthetic retrieval episodes of heed-small (data.py) and for its own evaluation
(eval_generalise.py).

Every list comes in two parts: TRAIN_* (drawn at random per training episode) and HELDOUT_* (never used in
training; eval_generalise.py measures on them how well retrieval carries over to wording the model never
saw). Placeholders: {E} entity, {A} attribute name, {V} value, {Q} question, {S} sentence.
"""

# Attributes: (names that mean the same thing, kind of value). The question may use another name of the
# same attribute than the fact does, so the model learns to match by meaning rather than by string.
TRAIN_ATTRIBUTES = [
    (("secret number", "secret digits"), "number"),
    (("room number", "room"), "number"),
    (("badge number", "badge ID", "ID badge number"), "number"),
    (("phone extension", "extension number", "desk extension"), "number"),
    (("access code", "door code", "entry code"), "number"),
    (("password", "passphrase", "login password"), "password"),
    (("favourite colour", "favorite color", "preferred colour"), "colour"),
    (("home town", "birthplace", "town of birth"), "town"),
    (("favourite fruit", "preferred fruit"), "fruit"),
    (("code word", "codeword", "secret word"), "word"),
    (("pet's name", "dog's name"), "name"),
    (("licence plate", "car registration", "number plate"), "plate"),
    (("meeting day", "weekly meeting day"), "weekday"),
    (("start date", "first working day", "starting date"), "date"),
    (("port", "port number", "listening port"), "number"),
    (("version", "release number", "version number"), "version"),
    (("manager", "supervisor", "boss"), "person"),
    (("budget", "annual budget"), "money"),
    (("flight number", "flight"), "flight"),
    (("ticket number", "support ticket"), "number"),
]
HELDOUT_ATTRIBUTES = [
    (("locker code", "locker combination"), "number"),
    (("postal code", "zip code"), "number"),
    (("seat number", "assigned seat"), "plate"),
    (("favourite animal", "favorite animal"), "animal"),
]

# Facts stated in prose. {V} may sit anywhere in the sentence.
TRAIN_FACTS = [
    "The {A} of {E} is {V}.",
    "{E}'s {A} is {V}.",
    "{E} has the {A} {V}.",
    "For {E}, the {A} is {V}.",
    "{V} is the {A} of {E}.",
    "{E} uses {V} as the {A}.",
    "The {A} for {E} was set to {V}.",
    "Records show that the {A} of {E} is {V}.",
    "{E} - {A}: {V}.",
    "It is worth noting that {E}'s {A} is {V}.",
    "After the last update, {E}'s {A} became {V}.",
    "{E} listed {V} as the {A}.",
    "In the file, the {A} of {E} appears as {V}.",
    "Everyone knows the {A} of {E}: it is {V}.",
    "{A} of {E} = {V}",
    "We confirmed that {E} has {A} {V}, as expected.",
    "{E} reported that the {A} is {V}.",
    "The {A} assigned to {E} is {V}.",
    "{E}'s new {A}, {V}, takes effect today.",
    "If you need the {A} of {E}, it is {V}.",
    "The {A} that {E} chose is {V}.",
    "{E} wrote {V} on the form as the {A}.",
]
HELDOUT_FACTS = [
    "Note: {E}'s {A} is {V}.",
    "By the way, {E} keeps {V} as the {A}.",
    "{E} changed the {A} to {V} yesterday, and it stays that way.",
    "Just so you know, the {A} {E} uses is {V}.",
    "According to the memo, {E} was given {A} {V}.",
]

# Sentences that share the question's words but hold no value: hard distractors.
TRAIN_MENTIONS = [
    "{E} asked whether the {A} could be changed.",
    "Nobody remembers the old {A} of {E}.",
    "The {A} of {E} is stored in a separate file.",
    "{E} will get a new {A} next month.",
    "Questions about the {A} of {E} go to the front desk.",
    "The {A} of {E} was discussed at length, without a decision.",
]

TRAIN_QUESTIONS = [
    "What is the {A} of {E}?",
    "What is {E}'s {A}?",
    "Which {A} does {E} have?",
    "Tell me the {A} of {E}.",
    "What {A} was given to {E}?",
    "Give the {A} for {E}.",
    "{E}'s {A}?",
    "Do you remember the {A} of {E}?",
    "I need {E}'s {A}. What is it?",
    "Look up the {A} of {E}.",
    "What did {E} have as the {A}?",
]
HELDOUT_QUESTIONS = [
    "Could you find the {A} that belongs to {E}?",
    "Which {A} is recorded for {E}?",
    "Remind me: what {A} does {E} use?",
]

# (question wrapper, text between it and the answer). The first is the one Heed's InfiniRetri prompt uses.
TRAIN_WRAPPERS = [
    ("\nQuestion: {Q}\nAnswer:", " "),
    ("\n{Q}\n", ""),
    ("\nUser: {Q}\nAssistant:", " "),
    ("\n### Question\n{Q}\n### Answer\n", ""),
    ("\nQuery: {Q}\nResponse:", " "),
    ("\n{Q}", " "),
    ("\nInput: {Q}\nOutput:", " "),
    ("\nQuestion: {Q}\nAnswer: It is", " "),
]
HELDOUT_WRAPPERS = [
    ("\nQ: {Q}\nA:", " "),
    ("\n>>> {Q}\n", ""),
    ("\n[question] {Q}\n[answer]", " "),
]

# Questions about a sentence of the text ({S}: the sentence with a blank).
TRAIN_CLOZE = [
    "Fill in the blank from the text above: \"{S}\"",
    "Which word is missing in \"{S}\"?",
    "Complete the sentence from the text: \"{S}\"",
    "In the text, what goes in the gap: \"{S}\"?",
]
HELDOUT_CLOZE = [
    "Which word was removed from this sentence of the text: \"{S}\"?",
]

# Passage ranking: (header, label of passage N, question part). The first follows Heed's ICR prompt.
TRAIN_RANKING = [
    ("Here are some paragraphs:", "\n\n[{N}] ",
     "\n\nPlease find information that is relevant to the following query in the paragraphs above.\n\n"
     "Query: {Q}\nThe most relevant paragraph is [", "]"),
    ("", "\nPassage {N}:\n", "\nQuestion: Which passage answers \"{Q}\"?\nAnswer: Passage ", ""),
    ("Documents:", "\n\nDocument {N}: ", "\n\n{Q}\nThe answer is in document ", ""),
    ("Search results:", "\n({N}) ", "\nWhich result answers the question \"{Q}\"? Result (", ")"),
]
# Heed's ICR prompt with "[*]" before every passage (its block mode, where a passage's tokens must not depend
# on its place): no label to name, so the answer is the first words of the answering passage.
TRAIN_RANKING_UNNUMBERED = ("Here are some paragraphs:", "\n\n[*] ",
                            "\n\nPlease find information that is relevant to the following query in the paragraphs "
                            "above.\n\nQuery: {Q}\nThe most relevant paragraph begins with:")

# Generated question wrappers (data.py's Synth.wrapper): a marker word for the question and one for the answer,
# in one of these layouts. None of them is a held-out wrapper or close to one: no one-letter markers, no square
# brackets, no ">" prompts.
TRAIN_WRAPPER_ASK = ("Question Query Prompt Input User Request Task Problem Inquiry Customer Student Human Reader "
                     "Visitor Caller Asked").split()
TRAIN_WRAPPER_ANSWER = ("Answer Response Reply Output Assistant Result Bot Agent Teacher Solution Model Expert "
                        "Support Librarian Clerk").split()
TRAIN_WRAPPER_LAYOUTS = [
    ("\n{q}: {Q}\n{a}:", " "),
    ("\n{q} - {Q}\n{a} -", " "),
    ("\n**{q}:** {Q}\n**{a}:**", " "),
    ("\n<{ql}>{Q}</{ql}>\n<{al}>", ""),
    ("\n## {q}\n{Q}\n## {a}\n", ""),
    ("\n{q} = {Q}\n{a} =", " "),
    ("\n({ql}) {Q}\n({al})", " "),
    ("\n{Q}\n{a}:", " "),
    ("\n{q}:\n{Q}\n\n{a}:\n", ""),
    ("\n--- {ql} ---\n{Q}\n--- {al} ---\n", ""),
    ("\n{QU}: {Q}\n{AU}:", " "),
    ("\n{q} says: {Q}\n{a} says:", " "),
]

HELDOUT_RANKING = [
    ("Read the notes below.", "\n\nNote #{N}\n", "\n\nFor the question \"{Q}\", the useful note is #", ""),
]

# Phrasings of the pass key (kept from heed-tiny: InfiniRetri's bench haystack uses the first).
KEYNAMES = [("pass key", "The pass key is"), ("passkey", "The passkey is"), ("secret code", "The secret code is"),
            ("access key", "The access key is"), ("magic number", "The magic number is")]
