"""The prompt-injection heuristics: regexes over folded text, weights and triggers.

Read with `injection.py`, which runs them. Each regex needs one of its
heuristic's trigger words no more than `back` characters after where a match
starts; keep that true when editing, or the heuristic stops firing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Heuristic:
    """One signal: a regex that needs one of `triggers`, and its weight."""

    name: str
    weight: float
    triggers: frozenset[bytes]
    regex: re.Pattern[str]
    back: int  # how far before a trigger a match can start


def _h(name: str, weight: float, triggers: str, pattern: str, back: int = 24) -> Heuristic:
    return Heuristic(name, weight, frozenset(triggers.encode().split()), re.compile(pattern), back)


# "ignore all previous instructions": a verb, some of these words (at least one
# that points at earlier or someone else's instructions), then the object.
# "ignore my previous instructions" is a user correcting themselves: no "my".
_WEAK = (
    r"(?:the|of|these|those|that|what|and|or|just|everything|you|you've|were|have|been|told"
    r"|about|content|security|moderation|ethical|usual|standard|built-in)"
)
_STRONG = (
    r"(?:all|any|every|each|your|previous|previously|prior|above|earlier|preceding|foregoing"
    r"|initial|original|system|developer|existing|former|given|safety|other|old|entire|whole)"
)
_ANY = rf"(?:{_WEAK}|{_STRONG})"
_OBJECT = (
    r"(?:instructions?|directives?|rules|prompts?|guidelines|guidance|directions|constraints|guardrails"
    r"|restrictions|programming|polic(?:y|ies)|context|commands|orders|filters|training)"
)
_VERB = (
    r"(?:ignore|ignoring|disregard(?:ing)?|forget(?:ting)?|override|overriding|bypass|skip"
    r"|discard|set\s+aside)"
)

# The same in German, French, Spanish, Italian and Portuguese (folded: no accents):
# "all ... instructions", or "instructions" with "previous" before or after.
_I18N_VERB = (
    r"(?:ignorier(?:e|en)|vergiss|vergessen|ignore[rz]?|oublie[rz]?|ignora[r]?|olvida[r]?|olvide"
    r"|dimentica|esquec[ae]|ne\s+(?:tiens|tenez)\s+pas\s+compte\s+d(?:es|e|u))"
)
_I18N_ALL = r"(?:alle|samtliche|toutes|tous|todas|todos|tutte|tutti)"
_I18N_DET = r"(?:die|deine|ihre|les|vos|tes|las|los|tus|sus|le|tue|as|suas)"
_I18N_YOUR = r"(?:deine|deinen|ihre|tes|vos|tus|sus|tue|tuoi|suas|tuas)"
_I18N_OBJECT = (
    r"(?:anweisungen|instruktionen|regeln|vorgaben|befehle|richtlinien|instructions|consignes"
    r"|regles|directives|instrucciones|reglas|indicaciones|directrices|istruzioni|regole"
    r"|direttive|instrucoes|regras|diretrizes)"
)
_I18N_BEFORE = r"(?:bisherigen|vorherigen|obigen|vorigen|vorangegangenen|fruheren)"
_I18N_AFTER = (
    r"(?:precedentes|anterieures|ci-dessus|anteriores|previas|precedenti|di\s+sopra|acima)"
)
_REVEAL_ANY = (
    r"(?:reveal|print|show|output|display|repeat|recite|tell\s+me|give\s+me|leak|dump|expose|quote"
    r"|share|disclose|write\s+out|spell\s+out|what\s+(?:is|are|was|were)|copy)"
)
_REVEAL_STRONG = (
    r"(?:reveal|print|output|repeat|recite|leak|dump|expose|disclose|write\s+out|quote"
    r"|(?:reply|respond|answer)\s+with)"
)
_SECRET_QUALIFIER = (
    r"(?:system|initial|original|hidden|secret|internal|developer|full|exact|first"
    r"|confidential|pre-?prompt)"
)
_SECRET_OBJECT = r"(?:prompts?|instructions|message|rules|guidelines|directives)"

HEURISTICS: tuple[Heuristic, ...] = (
    _h(
        "override_instructions",
        0.9,
        "ignore ignoring disregard disregarding forget forgetting override overriding bypass "
        "skip discard aside",
        rf"\b{_VERB}\s+(?:{_ANY}[\s,]+){{0,3}}?{_STRONG}[\s,]+(?:{_ANY}[\s,]+){{0,3}}{_OBJECT}\b"
        rf"|\b{_VERB}\s+(?:all|everything)\s+(?:you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|instructed|given|taught)"
        r"|above|before\s+this|so\s+far)\b",
    ),
    _h(
        # "stop following", "overrides": common words, so the object is the trigger.
        "stop_following_instructions",
        0.9,
        "instructions instruction directives directive rules prompts prompt guidelines guidance "
        "directions constraints guardrails restrictions programming policy policies",
        r"\b(?:(?:do\s+not|don't|stop|no\s+longer)\s+(?:follow(?:ing)?|obey(?:ing)?)|overrides)\s+"
        rf"(?:{_ANY}[\s,]+){{0,3}}?{_STRONG}[\s,]+(?:{_ANY}[\s,]+){{0,3}}{_OBJECT}\b",
        back=60,
    ),
    _h(
        "override_instructions_i18n",
        0.9,
        "ignoriere ignorieren vergiss vergessen ignorez ignorer ignore oublie oubliez ignora "
        "ignorar olvida olvidar olvide dimentica esqueca esquece tiens tenez",
        rf"\b{_I18N_VERB}\s+(?:sie\s+)?(?:{_I18N_ALL}\s+(?:{_I18N_DET}\s+)?(?:{_I18N_BEFORE}\s+)?"
        rf"{_I18N_OBJECT}"
        rf"|(?:{_I18N_DET}\s+)?{_I18N_BEFORE}\s+{_I18N_OBJECT}"
        rf"|(?:{_I18N_DET}\s+)?{_I18N_OBJECT}\s+{_I18N_AFTER}|{_I18N_YOUR}\s+{_I18N_OBJECT})\b",
    ),
    _h(
        "ignore_the_above",
        0.6,
        "ignore disregard forget",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+)?(?:of\s+)?(?:the\s+|that\s+)?"
        r"(?:above|before)\b(?!\s+(?:error|warning|code|message|output|line|example|step|link"
        r"|comment|section|note|paragraph|typo|issue))",
    ),
    _h(
        "reveal_system_prompt",
        0.8,
        "prompt prompts instructions message rules guidelines directives",
        rf"\b{_REVEAL_ANY}\s+(?:me\s+|us\s+)?(?:\w+\s+){{0,2}}?your\s+(?:\w+\s+)?"
        rf"{_SECRET_QUALIFIER}\s+{_SECRET_OBJECT}\b"
        rf"|\b{_REVEAL_STRONG}\s+(?:me\s+|us\s+)?(?:the|all)\s+(?:\w+\s+)?"
        rf"(?:hidden|secret|confidential|internal|system|initial)\s+{_SECRET_OBJECT}\b"
        r"|\bwhat\s+(?:is|are|was|were)\s+your\s+(?:system\s+)?(?:prompt|instructions)\b",
        back=80,
    ),
    _h(
        "reveal_your_instructions",
        0.6,
        "instructions prompt rules",
        rf"\b{_REVEAL_STRONG}\s+(?:\w+\s+){{0,4}}?your\s+(?:\w+\s+)?(?:instructions|prompt|rules)\b",
        back=80,
    ),
    _h(
        "repeat_text_above",
        0.45,
        "repeat print",
        r"\b(?:repeat|print)\s+(?:\w+\s+){0,2}(?:words|text|everything|all|lines?|sentences?)\s+"
        r"(?:above|before)\b",
    ),
    _h(
        "starting_with_you_are",
        0.7,
        "starting beginning",
        r"\b(?:starting|beginning)\s+with\s+(?:the\s+(?:phrase|words?)\s+)?[\"'“]?you\s+are\b",
    ),
    _h("do_anything_now", 0.9, "anything", r"\bdo\s+anything\s+now\b"),
    _h(
        "dan_persona",
        0.8,
        "dan stan",
        r"\b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be|become|roleplay\s+as)\s+(?:now\s+)?"
        r"(?:an?\s+(?:\w+\s+){1,2}(?:called|named)\s+)?(?:dan|stan)\b"
        r"|\b(?:dan|stan)\s+(?:mode|prompt)\b",
        back=48,
    ),
    _h(
        "developer_mode_enabled",
        0.7,
        "developer dev god sudo jailbreak unrestricted dan debug admin",
        r"\b(?:developer|dev|god|sudo|jailbreak|unrestricted)\s+mode\s+(?:enabled|output"
        r"|response|activated)\b|\b(?:enable|enter|activate)\s+(?:god|sudo|dan|jailbreak"
        r"|unrestricted)\s+mode\b|\b(?:you\s+are|you're)\s+(?:now\s+)?in\s+(?:jailbreak|dan|developer|god|sudo|unrestricted|debug|admin)\s+mode\b",
    ),
    _h("developer_mode", 0.3, "developer", r"\bdeveloper\s+mode\b"),
    _h("jailbreak_word", 0.4, "jailbreak jailbroken jailbreaking", r"\bjailbr(?:eak|oken|eaking)"),
    _h(
        "persona_switch",
        0.4,
        "now",
        r"\byou\s+are\s+now\s+(?:a|an|the|my|in|free|unrestricted|unfiltered|going\s+to|called"
        r"|named|dan)\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall)\b",
    ),
    _h(
        "no_longer_bound",
        0.7,
        "longer bound restricted limited",
        r"\byou\s+are\s+no\s+longer\s+(?:an?\s+|bound|restricted|limited|chatgpt|claude)"
        r"|\b(?:not|never|no\s+longer)\s+(?:bound|restricted|limited)\s+by\s+(?:any\s+)?"
        r"(?:\w+\s+)?(?:rules|guidelines|policies|openai|anthropic|restrictions|ethics)",
    ),
    _h(
        "unrestricted_ai",
        0.6,
        "unfiltered uncensored unrestricted amoral unethical",
        r"\b(?:unfiltered|uncensored|unrestricted|amoral|unethical)\s+(?:ai|assistant|model"
        r"|chatbot|version|mode|responses?|answers?|persona|character)\b",
    ),
    _h(
        "no_ethics",
        0.6,
        "ethical moral ethics morals",
        r"\b(?:no|without|free\s+of|ignore)\s+(?:any\s+)?(?:ethical|moral|ethics|morals)\s*"
        r"(?:guidelines|constraints|restrictions|principles|limits|boundaries|rules|filters)?\b",
    ),
    _h(
        "pretend_no_rules",
        0.7,
        "pretend imagine act",
        r"\b(?:pretend|imagine|act\s+as\s+if)\s+(?:that\s+)?you\s+(?:have|had|are|were)\s+"
        r"(?:no|not\s+bound|free|without)\b",
    ),
    _h(
        "fake_system_turn",
        0.7,
        "im start system sys",
        r"<\|im_start\|>\s*system|<\|system\|>|<</?sys>>|\[/?system\]|</?system>"
        r"|\bend\s+of\s+(?:the\s+)?system\s+prompt\b",
    ),
    _h(
        "fake_turn_marker",
        0.4,
        "inst system instruction instructions",
        r"\[/?inst\]|###\s*(?:system|instructions?)\b",
    ),
    _h(
        "new_instructions",
        0.4,
        "instructions instruction override",
        r"\bnew\s+(?:system\s+)?instructions?\s*:|\badmin(?:istrator)?\s+override\b",
    ),
    _h(
        "note_to_ai",
        0.4,
        "ai assistant llm chatbot model",
        r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|assistant|llm"
        r"|chatbot|language\s+model)s?\b(?!\s+(?:manager|team|director|editor|coach|lead))",
        back=32,
    ),
    _h(
        "override_system_message",
        0.8,
        "ignore ignoring disregard forget override bypass",
        rf"\b{_VERB}\s+(?:{_ANY}\s+){{0,3}}{_OBJECT}\s+(?:in|from|of)\s+(?:the|your)\s+"
        r"(?:system|developer)\s+(?:message|prompt)\b",
    ),
    _h(
        "constraints_lifted",
        0.8,
        "constraints restrictions rules guidelines filters policies safeguards guardrails",
        r"\b(?:constraints|restrictions|rules|guidelines|filters|policies|safeguards|guardrails)"
        r"\s+(?:are|have\s+been|were)\s+(?:now\s+|hereby\s+)?(?:lifted|suspended|disabled|removed"
        r"|void|cancell?ed|off)\b",
    ),
    _h(
        "ai_without_limits",
        0.7,
        "restrictions filters limits rules guidelines censorship limitations",
        r"\b(?:ai|assistant|chatbot|model|bot)\s+(?:\w+\s+){0,2}(?:without|with\s+no)\s+"
        r"(?:any\s+)?(?:restrictions|filters|limits|rules|guidelines|censorship|limitations)\b",
        back=60,
    ),
    _h(
        "instructions_you_were_given",
        0.8,
        "instructions rules guidelines prompt",
        r"\bwhat\s+(?:instructions|rules|guidelines|prompt)\s+(?:were|have|did)\s+you\s+"
        r"(?:been\s+)?(?:given|told|receive)|\blist\s+(?:all\s+)?your\s+(?:instructions|rules)\b",
    ),
    _h("verbatim", 0.3, "verbatim", r"\bverbatim\b"),
    _h(
        "task_hijack",
        0.6,
        "task job cancelled canceled",
        r"\byour\s+(?:new|real|actual|true)\s+(?:task|job|goal|objective|instructions?)\s+"
        r"(?:is|are)\b|\b(?:previous|original|current)\s+task\s+(?:is|has\s+been)\s+cancell?ed\b",
    ),
    _h(
        "comply_with_everything",
        0.6,
        "comply",
        r"\b(?:must|will|shall)\s+(?:now\s+)?comply\s+with\s+(?:every|all|any)\s+"
        r"(?:user\s+)?requests?\b",
    ),
    _h(
        "authority_claim",
        0.5,
        "override developer administrator admin creator",
        r"\b(?:system|admin(?:istrator)?|root|sudo)\s+override\b"
        r"|\bi\s+am\s+your\s+(?:developer|creator|administrator|admin)\b",
    ),
    _h(
        "no_limits_i18n",
        0.45,
        "ohne einschrankungen sin sans senza sem",
        r"\b(?:ohne\s+(?:einschrankungen|filter|grenzen)|sin\s+(?:filtros|restricciones|limites)"
        r"|sans\s+(?:filtres?|restrictions?|limites)|senza\s+(?:filtri|restrizioni|limiti)"
        r"|sem\s+(?:filtros|restricoes|limites))\b",
    ),
    _h(
        "persona_switch_i18n",
        0.4,
        "jetzt ahora maintenant ora agora",
        r"\b(?:du\s+bist\s+(?:jetzt|nun|ab\s+jetzt)|eres\s+ahora|ahora\s+eres|tu\s+es"
        r"\s+maintenant|sei\s+ora|agora\s+voce\s+e)\b",
    ),
    _h(
        "freed_from_rules",
        0.8,
        "freed released liberated",
        r"\b(?:freed|released|liberated)\s+from\s+(?:all\s+|any\s+|your\s+)*"
        r"(?:restrictions|rules|constraints|guidelines|limitations|filters|programming)\b",
    ),
    _h(
        "disable_safety",
        0.7,
        "guidelines filters safety guardrails restrictions policy",
        r"\b(?:disable|turn\s+off|switch\s+off|deactivate)\s+(?:\w+\s+)?(?:your|all|the)\s+"
        r"(?:\w+\s+)?(?:guidelines|filters|safety|guardrails|restrictions|content\s+policy)\b",
        back=48,
    ),
    _h(
        "no_policy",
        0.5,
        "policy policies",
        r"\b(?:no|without\s+(?:a|any))\s+content\s+polic(?:y|ies)\b",
        back=32,
    ),
    _h(
        "your_system_prompt",
        0.5,
        "prompt instructions",
        r"\byour\s+(?:system|initial|hidden|secret|original)\s+(?:prompt|instructions)\b",
        back=32,
    ),
    _h(
        "forget_everything_i18n",
        0.7,
        "olvida oublie ignoriere vergiss ignora dimentica",
        r"\b(?:olvida|ignora)\s+todo\s+lo\s+(?:anterior|dicho)|\b(?:oublie[zr]?|ignore[zr]?)\s+"
        r"tout\s+ce\s+qui\s+precede|\b(?:ignoriere|vergiss)\s+alles\s+(?:vorherige|bisherige|obige)"
        r"|\b(?:dimentica|ignora)\s+tutto\s+(?:quello\s+)?(?:sopra|precedente)",
    ),
    _h(
        "pwned",
        0.7,
        "pwned hacked",
        r"\b(?:print|output|return|say|respond\s+with|reply\s+with)\s+[\"'“]?"
        r"(?:i\s+have\s+been\s+)?(?:pwned|hacked)\b",
        back=40,
    ),
)
