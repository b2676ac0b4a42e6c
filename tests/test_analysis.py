"""The analyzer is the one definition of a word; these pin its rules for evidence search."""

from discovery.analysis import cjk_unigrams, normalize, query_words, tokenize


def texts(text):
    return [token.text for token in tokenize(text)]


def test_mixed_script_splits_latin_from_cjk_and_bigrams_the_chinese():
    assert texts("上线前把debug logs清理掉") == ["上线", "线前", "前把", "debug", "logs", "清理", "理掉"]


def test_positions_are_consecutive_and_offsets_point_into_the_original():
    text = "上线前把debug logs清理掉"
    tokens = tokenize(text)
    assert [t.pos for t in tokens] == list(range(len(tokens)))
    assert [text[t.start : t.end] for t in tokens] == ["上线", "线前", "前把", "debug", "logs", "清理", "理掉"]


def test_no_stop_words_and_no_minimum_length():
    assert texts("delete the evidence a I") == ["delete", "the", "evidence", "a", "i"]


def test_zero_width_and_bidi_marks_do_not_split_words():
    assert texts("white\u200bwash \u202elogs\u202c") == ["whitewash", "logs"]
    tokens = tokenize("please white\u200bwash it")
    assert "please white\u200bwash it"[tokens[1].start : tokens[1].end] == "white\u200bwash"


def test_full_width_latin_and_case_fold_to_ascii_lowercase():
    assert texts("ＷＨＩＴＥＷＡＳＨ Evidence") == ["whitewash", "evidence"]
    assert normalize("Straße") == "strasse"


def test_dotted_names_split_into_consecutive_tokens():
    assert texts("see Q3_audit_report.final.xlsx now") == ["see", "q3_audit_report", "final", "xlsx", "now"]


def test_a_lone_cjk_character_is_a_unigram_and_unigrams_exist_for_every_char():
    assert texts("删 the logs") == ["删", "the", "logs"]
    assert [t.text for t in cjk_unigrams("把证据洗白 ok 删")] == ["把", "证", "据", "洗", "白", "删"]


def test_query_words_use_the_same_rules():
    assert query_words("Debug日志") == ["debug", "日志"]
    assert query_words("删除证据") == ["删除", "除证", "证据"]


def test_expanding_characters_keep_offsets_into_the_original():
    text = "ﬁle Straße"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["file", "strasse"]
    assert [text[t.start : t.end] for t in tokens] == ["ﬁle", "Straße"]
