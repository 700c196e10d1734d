"""Each tweet-cleaning step, the whole cleaning pipeline, lemmatization and the cached datasets.map."""


import datasets
import pytest
from shared import REPO

from qa_transfer.classification.tweets import (
    PREPROCESSED_TEXT_COLUMN,
    clean_tweet,
    describe_emojis,
    lemmatize_text,
    normalize_whitespace,
    preprocess_dataset,
    preprocess_text,
    replace_mentions,
    replace_urls,
    split_hashtags,
    squeeze_repeated_characters,
    unescape_html_entities,
)

FIXTURES = REPO / "tests" / "fixtures" / "classification"


def test_unescape_html_entities():
    tweet = '"@UberFacts: complaining increases immunity &amp; boosts health" &lt;3 &quot;lol&quot;'
    assert unescape_html_entities(tweet) == '"@UberFacts: complaining increases immunity & boosts health" <3 "lol"'


@pytest.mark.parametrize(
    "tweet, expected",
    [
        ("Measles linked to Disneyland http://t.co/tEoU2zAQat", "Measles linked to Disneyland URL"),
        (
            '"Arizona monitoring hundreds http://t.co/tEoU2zAQat" It\'s a small world',
            '"Arizona monitoring hundreds URL" It\'s a small world',
        ),
        ("read this: https://www.cdc.gov/flu/index.html. Then talk", "read this: URL. Then talk"),
        ("(www.who.int/vaccines) and pic.twitter.com/AbC123", "(URL) and URL"),
        ("no link here, just a .com joke", "no link here, just a .com joke"),
    ],
)
def test_replace_urls(tweet, expected):
    assert replace_urls(tweet) == expected


def test_replace_mentions_keeps_email_addresses_and_checkins():
    tweet = "@MSignorile Immunizations should be mandatory, cc @CDCgov. Mail info@clinic.org @ Marjais SipNShop"
    assert (
        replace_mentions(tweet)
        == "@USER Immunizations should be mandatory, cc @USER. Mail info@clinic.org @ Marjais SipNShop"
    )


@pytest.mark.parametrize(
    "tweet, expected",
    [
        ("Vaccinate your kids! #VaccinesWork", "Vaccinate your kids! Vaccines Work"),
        ("No #economy without a #Covid19 #vaccine.", "No economy without a Covid 19 vaccine."),
        ("#COVIDVaccine rollout #MMR #vaccines_save_lives", "COVID Vaccine rollout MMR vaccines save lives"),
        ("we're #1 in flu shots", "we're 1 in flu shots"),
        ("issue#5 stays, so does C#", "issue#5 stays, so does C#"),
    ],
)
def test_split_hashtags_keeps_the_words(tweet, expected):
    assert split_hashtags(tweet) == expected


def test_describe_emojis_names_each_emoji_once_per_run():
    assert describe_emojis("Come thru 🙌🙌🙌🙌 now") == \
        "Come thru  person raising both hands in celebration  now"
    assert (
        describe_emojis("So fingers crossed. 🤞🤞")
        == "So fingers crossed.  hand with index and middle fingers crossed "
    )


def test_describe_emojis_drops_modifiers_and_joiners():
    # thumbs up with a skin tone, a heart with its variation selector, a flag (two regional indicators)
    assert describe_emojis("done 👍🏽❤️🇺🇸").split() == [
        "done",
        "thumbs",
        "up",
        "sign",
        "heavy",
        "black",
        "heart",
        "flag",
    ]
    assert describe_emojis("got my shot💉😷!") == "got my shot syringe face with medical mask !"


def test_describe_emojis_leaves_other_text_alone():
    text = "Vaccines: safe, effective & free — ask your doctor ©2021"
    assert describe_emojis(text) == text


@pytest.mark.parametrize(
    "tweet, expected",
    [
        ("Sooooo proud!!!!!", "Soo proud!!"),
        ("nooooo waaaay", "noo waay"),
        ("1000 doses, 3.333 per cent", "1000 doses, 3.333 per cent"),
        ("good book", "good book"),
    ],
)
def test_squeeze_repeated_characters(tweet, expected):
    assert squeeze_repeated_characters(tweet) == expected


def test_normalize_whitespace_joins_crlf_lines():
    tweet = "VACCINES ARE LIKE VIRUS DEFINITIONS\r\nWOULD YOU PUT  SOMETHING\tFROM SYMANTEC IN YOUR KIDS\n "
    assert (
        normalize_whitespace(tweet)
        == "VACCINES ARE LIKE VIRUS DEFINITIONS WOULD YOU PUT SOMETHING FROM SYMANTEC IN YOUR KIDS"
    )


def test_clean_tweet_runs_every_step_in_order():
    tweet = ("Sip N Shop Come thru right now #Marjais #PopularNobodies #MMR 🙌🙌🙌🙌 @ Marjais SipNShop "
             "http://t.co/JfWAH7uzWE")
    assert clean_tweet(tweet) == (
        "Sip N Shop Come thru right now Marjais Popular Nobodies MMR person raising both hands in celebration "
        "@ Marjais SipNShop URL"
    )
    tweet = '"@myfoxla: Pro-vax &amp; proud"\r\nSoooo true!!! #VaccinateYourKids https://t.co/6HC9DuSTbV 💉💉'
    assert clean_tweet(tweet) == '"@USER: Pro-vax & proud" Soo true!! Vaccinate Your Kids URL syringe'


def test_lemmatize_text_lemmatizes_plain_words_only():
    text = "The kids were getting their vaccines and doctors said shots are safe! Don't worry :) @USER URL 2021"
    assert lemmatize_text(text) == (
        "The kid be get their vaccine and doctor say shot be safe ! Don't worry :) @USER URL 2021"
    )


def test_preprocess_text_switches():
    tweet = "Kids got their shots &amp; smiled http://t.co/x1"
    assert preprocess_text(tweet, clean=False, lemmatize=False) == tweet
    assert preprocess_text(tweet, clean=True, lemmatize=False) == "Kids got their shots & smiled URL"
    assert preprocess_text(tweet, clean=True, lemmatize=True) == "Kid get their shot & smile URL"
    # without cleaning the URL stays (nltk's tokenizer unescapes HTML entities by itself)
    assert preprocess_text(tweet, clean=False, lemmatize=True) == "Kid get their shot & smile http://t.co/x1"


def test_preprocess_dataset_adds_a_column_and_is_cached(tmp_path):
    dataset = datasets.load_dataset(
        "csv", data_files=str(FIXTURES / "train.csv"), split="train", cache_dir=str(tmp_path / "cache")
    )
    first = preprocess_dataset(dataset, "tweet", clean=True, lemmatize=True)
    again = preprocess_dataset(dataset, "tweet", clean=True, lemmatize=True)
    other = preprocess_dataset(dataset, "tweet", clean=True, lemmatize=False)

    assert first.column_names == dataset.column_names + [PREPROCESSED_TEXT_COLUMN]
    assert first[PREPROCESSED_TEXT_COLUMN][0] == preprocess_text(dataset["tweet"][0], clean=True, lemmatize=True)
    assert first.cache_files and again.cache_files == first.cache_files  # read back, not recomputed
    assert other.cache_files != first.cache_files  # the settings are part of the cache key


def test_lemmatize_text_keeps_case():
    assert lemmatize_text("Kids VACCINES Vaccinated US") == "Kid VACCINE Vaccinate US"
