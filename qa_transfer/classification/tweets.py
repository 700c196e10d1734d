"""Tweet cleaning and lemmatization, shared by training, evaluation and prediction.

`clean_tweet` runs these steps in this order; each is its own function so that it can be tested and
reused alone:

1. `unescape_html_entities`: "&amp;" -> "&", "&lt;3" -> "<3" (tweet exports keep HTML escapes).
2. `replace_urls`: "https://t.co/x1Y", "www.cdc.gov/flu", "pic.twitter.com/x" -> "URL". A placeholder rather
   than nothing, because whether a tweet links somewhere (news, studies) is itself a signal.
3. `replace_mentions`: "@CDCgov" -> "@USER" (user names are noise; that the tweet replies to someone is not).
   An "@" inside an e-mail address or followed by a space is left alone.
4. `split_hashtags`: "#VaccinesWork" -> "Vaccines Work", "#COVID19" -> "COVID 19". The words of a hashtag
   often carry the stance, so they are kept and split at case and digit changes and underscores.
5. `describe_emojis`: each emoji becomes its Unicode name in lower case ("💉" -> "syringe"); a run of the
   same emoji is described once, skin-tone modifiers, variation selectors and zero-width joiners are dropped
   and a flag becomes "flag". Uses only the standard library's `unicodedata`.
6. `squeeze_repeated_characters`: a letter or symbol repeated three or more times is cut to two
   ("soooo" -> "soo", "!!!!" -> "!!"); digits are left alone, so "1000" stays "1000".
7. `normalize_whitespace`: every run of whitespace, line breaks (CRLF) included, becomes one space; the
   ends are stripped.

`lemmatize_text` tokenizes with nltk's `TweetTokenizer` (which needs no downloaded data) and lemmatizes
plain words with simplemma, whose English dictionary ships inside its wheel, so it works offline.

`preprocess_dataset` applies both to a `datasets.Dataset` through `Dataset.map`, so results are cached.
"""

from __future__ import annotations

import html
import re
import unicodedata

import simplemma
from datasets import Dataset
from nltk.tokenize import TweetTokenizer

PREPROCESSED_TEXT_COLUMN = "preprocessed_text"
URL_PLACEHOLDER = "URL"
MENTION_PLACEHOLDER = "@USER"

# A URL ends before whitespace or a quote, and never on trailing punctuation ("see http://t.co/x1Y.").
_URL = re.compile(r"(?:https?://|www\.|pic\.twitter\.com/)[^\s\"“”<>]*[^\s\"“”<>.,;:!?)\]']", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#&])#(\w+)")
# Word boundaries inside a hashtag: lower->Upper ("vaccinesWork"), the end of an acronym ("COVIDVaccine"),
# letter<->digit ("COVID19") and underscores.
_HASHTAG_WORD_BOUNDARY = re.compile(
    r"_+|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"
)

# Code-point blocks that hold emojis and pictographs, plus the invisible characters that combine them.
_EMOJI_BLOCKS = (
    "\u2300-\u23ff"  # Miscellaneous Technical (⌚, ⏰)
    "\u2600-\u27bf"  # Miscellaneous Symbols, Dingbats (☺, ❤, ✔)
    "\u2b00-\u2bff"  # Miscellaneous Symbols and Arrows (⭐)
    "\U0001f000-\U0001faff"  # Mahjong ... Symbols and Pictographs Extended-A (😷, 💉, 🤞, flags)
)
_EMOJI_JOINERS = "\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff"  # zero-width joiner, variation selectors, skin tones
_EMOJI_RUN = re.compile(f"[{_EMOJI_BLOCKS}][{_EMOJI_BLOCKS}{_EMOJI_JOINERS}]*")
_EMOJI_JOINER = re.compile(f"[{_EMOJI_JOINERS}]")

_REPEATED_CHARACTER = re.compile(r"([^\s\d])\1{2,}")
_WHITESPACE = re.compile(r"\s+")

_TWEET_TOKENIZER = TweetTokenizer()
_PLAIN_WORD = re.compile(r"[A-Za-z]+")


def unescape_html_entities(text: str) -> str:
    return html.unescape(text)


def replace_urls(text: str, placeholder: str = URL_PLACEHOLDER) -> str:
    return _URL.sub(placeholder, text)


def replace_mentions(text: str, placeholder: str = MENTION_PLACEHOLDER) -> str:
    return _MENTION.sub(placeholder, text)


def split_hashtags(text: str) -> str:
    def hashtag_words(match: re.Match) -> str:
        return _HASHTAG_WORD_BOUNDARY.sub(" ", match.group(1)).strip()

    return _HASHTAG.sub(hashtag_words, text)


def _emoji_name(character: str) -> str:
    if "\U0001f1e6" <= character <= "\U0001f1ff":  # a flag is a pair of regional-indicator letters
        return "flag"
    return unicodedata.name(character, "").lower()


def describe_emojis(text: str) -> str:
    def describe_run(match: re.Match) -> str:
        names: list[str] = []
        for character in _EMOJI_JOINER.sub("", match.group(0)):
            name = _emoji_name(character)
            if name and (not names or names[-1] != name):
                names.append(name)
        return f" {' '.join(names)} "

    return _EMOJI_RUN.sub(describe_run, text)


def squeeze_repeated_characters(text: str) -> str:
    return _REPEATED_CHARACTER.sub(r"\1\1", text)


def normalize_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


CLEANING_STEPS = (
    unescape_html_entities,
    replace_urls,
    replace_mentions,
    split_hashtags,
    describe_emojis,
    squeeze_repeated_characters,
    normalize_whitespace,
)


def clean_tweet(text: str) -> str:
    """Run every step of `CLEANING_STEPS` in order (see the module docstring)."""
    for step in CLEANING_STEPS:
        text = step(text)
    return text


def lemmatize_token(token: str) -> str:
    """The English lemma of a plain alphabetic word ("vaccines" -> "vaccine", "were" -> "be").

    The lemma keeps the word's case ("Kids" -> "Kid", "VACCINES" -> "VACCINE"), for cased models. Anything
    else is kept as it is: contractions (simplemma would turn "don't" into "do" and lose the negation),
    numbers, emoticons, hashtags and placeholders.
    """
    if not _PLAIN_WORD.fullmatch(token):
        return token
    lemma = simplemma.lemmatize(token, lang="en")
    if lemma.lower() == token.lower():
        return token
    if token.isupper() and len(token) > 1:
        return lemma.upper()
    return lemma[0].upper() + lemma[1:] if token[0].isupper() else lemma


def lemmatize_text(text: str) -> str:
    """Tokenize a tweet with nltk's TweetTokenizer and lemmatize each word; tokens are joined by spaces."""
    return " ".join(lemmatize_token(token) for token in _TWEET_TOKENIZER.tokenize(text))


def preprocess_text(text: str, clean: bool = True, lemmatize: bool = False) -> str:
    """The text a model sees: cleaned first (if `clean`), then lemmatized (if `lemmatize`)."""
    if clean:
        text = clean_tweet(text)
    if lemmatize:
        text = lemmatize_text(text)
    return text


def _preprocess_batch(batch: dict[str, list], text_column: str, clean: bool, lemmatize: bool) -> dict[str, list]:
    return {PREPROCESSED_TEXT_COLUMN: [preprocess_text(text, clean, lemmatize) for text in batch[text_column]]}


def preprocess_dataset(
    dataset: Dataset,
    text_column: str,
    clean: bool = True,
    lemmatize: bool = False,
    num_proc: int | None = None,
    load_from_cache_file: bool = True,
) -> Dataset:
    """Add the column `PREPROCESSED_TEXT_COLUMN` (the original text column is kept).

    Runs through `Dataset.map`, so a dataset loaded from files is processed once and then read back from
    the datasets cache, keyed by the settings.
    """
    return dataset.map(
        _preprocess_batch,
        batched=True,
        fn_kwargs={"text_column": text_column, "clean": clean, "lemmatize": lemmatize},
        num_proc=num_proc,
        load_from_cache_file=load_from_cache_file,
        desc=f"Preprocessing tweets (clean={clean}, lemmatize={lemmatize})",
    )
