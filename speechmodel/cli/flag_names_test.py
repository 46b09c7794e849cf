from speechmodel.cli.flag_names import normalize_flag_names


def test_normalize_flag_names():
    known = {"top_k", "max_utterance", "attention"}
    assert normalize_flag_names(
        ["x.wav", "--top-k=2", "--max-utterance", "5", "--no-attention", "--other-flag", "--", "--top-k"], known
    ) == ["x.wav", "--top_k=2", "--max_utterance", "5", "--noattention", "--other-flag", "--", "--top-k"]


def test_underscores_and_single_dashes_are_left_alone():
    known = {"top_k", "attention"}
    assert normalize_flag_names(["-h", "--top_k", "3", "--noattention", "--no_attention", "-"], known) == [
        "-h", "--top_k", "3", "--noattention", "--noattention", "-"
    ]
