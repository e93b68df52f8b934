"""Function words, per language: left out of knowledge-base searches, weighed little in
intent matching.

Without them, "do you sell shoes?" finds the passage that says "do" and "you" most
often. BM25's idf discounts such words only in a large collection; a company's
knowledge base is often a dozen files. The lists hold only function words (articles,
pronouns, auxiliaries, prepositions, conjunctions, question words), after the Snowball
project's lists, plus greetings and thanks; none of the words customers ask *about*
("order", "open", "help" stay searchable, unlike in longer general-purpose lists). The
pieces contractions and elisions split into ("don't" -> "don", "t"; "dell'ordine" ->
"dell", "ordine") are function words too.

Languages without a list search every word.
"""

from __future__ import annotations

from functools import cache

from botkit.language.tags import primary_subtag, try_normalize
from botkit.language.words import search_terms

__all__ = ["stopwords"]

_LISTS = {
    "en": """
        a about above after again against all am an and any are as at be because been
        before being below between both but by can could did do does doing down during
        each few for from further had has have having he her here hers herself him
        himself his how i if in into is it its itself just me more most my myself no nor
        not of off on once only or other our ours ourselves out over own same she should
        so some such than that the their theirs them themselves then there these they
        this those through to too under until up very was we were what when where which
        while who whom why will with would you your yours yourself yourselves hi hello
        hey please thanks thank ok okay im dont cant ive id youre get got want need know
        like let
        t s m d ll re ve don doesn didn isn aren wasn weren haven hasn hadn won wouldn
        couldn shouldn mustn shan
    """,
    "es": """
        a al algo algunas algunos ante antes como con contra cual cuando de del desde
        donde durante e el ella ellas ellos en entre era eran es esa esas ese eso esos
        esta estaba estas este esto estos estoy fue fueron ha habia han hasta hay la las
        le les lo los mas me mi mis mucho muy nada ni no nos nosotros o os otra otro para
        pero poco por porque que quien se sea ser si sin sobre son su sus tambien te
        tengo tiene tu tus un una uno unos vosotros y ya yo hola gracias favor puedo
        puede quiero
    """,
    "fr": """
        a ai au aux avec c ce ces cette d dans de des du elle elles en est et etre eu il
        ils j je l la le les leur leurs lui m ma mais me mes moi mon n ne nos notre nous
        on ou par pas pour qu que qui s sa se ses si son sont sur ta te tes toi ton tu un
        une vos votre vous y bonjour merci est-ce comment quand ou puis peux veux
    """,
    "de": """
        aber alle als also am an auch auf aus bei bin bis bist da dann das dass dem den
        der des die dies diese dieser dir doch du durch ein eine einem einen einer er es
        fur hab habe haben hat ich ihr ihre im in ist ja kann mein meine mich mir mit nach
        nicht noch nur ob oder sein sich sie sind so uber um und uns unser von vor war was
        wenn wer wie wir wird wo zu zum zur hallo danke bitte mochte
    """,
    "pt": """
        a ao aos as com como da das de do dos e ela elas ele eles em entre era esta este
        eu foi ha isso isto ja la lhe mais mas me meu minha muito na nao nas no nos o os
        ou para pela pelo por qual quando que quem se sem seu sua sao tem um uma voce
        voces ola obrigado obrigada posso quero
    """,
    "it": """
        a ad al alla alle anche che chi ci come con da dal dalla dei del della di e ed
        gli ha hanno ho i il in io la le lei lo loro lui ma mi mia mio ne nei nel nella
        noi non o per perche piu quale quando quello questa questo se si sono su sua suo
        ti tu un una uno voi ciao grazie posso vorrei l dell all nell sull dall c quest
        quell
    """,
    "nl": """
        aan al als bij dan dat de der deze die dit doch doen door dus een en er ge geen
        had heb hebben heeft hem het hier hij hoe hun ik in is ja je kan kon me men met
        mij mijn na naar niet nog nu of om omdat ons ook op over te tot u uit van voor
        want waren was wat we wel wie wij wil worden zal ze zich zij zijn zo hallo dank
        bedankt graag
    """,
}


def stopwords(language: str | None) -> frozenset[str]:
    """The function words of ``language`` as search terms (empty when it has no list)."""
    tag = try_normalize(language)
    primary = primary_subtag(tag) if tag is not None else None
    return _by_primary(primary) if primary in _LISTS else _NONE


# Cached by the language subtag of a language with a list, never by the tag: the tag is
# the customer's to choose (``de-a0000001``, ``de-a0000002``... are all valid), and a
# cache keyed by it grew ~13.5 KB per distinct tag, without bound. At most one entry
# per list now.
_NONE: frozenset[str] = frozenset()


@cache
def _by_primary(primary: str) -> frozenset[str]:
    return frozenset(search_terms(_LISTS[primary]))
