"""``glue/<name>``: the paper's 8 GLUE tasks, read from the Hugging Face hub or a local copy.

All binary: MNLI keeps entailment (0) vs neutral (1) only, as in the paper; STS-B is binarised as
``label = int(score >= 3.0)``. The label rules act on the float label column (a NumPy array) with
its own methods, so this module imports no NumPy.
"""

from __future__ import annotations

from typing import Any

from layerinf.tasks import HubSource, TaskSpec, register

HUB_ID = "nyu-mll/glue"
_LICENCE = "licences differ per task; see https://gluebenchmark.com/"
_GLUE = "Wang et al. 2019, GLUE: a multi-task benchmark and analysis platform for NLU, ICLR"


def labelled(raw: Any) -> tuple[Any, Any]:
    """Keep every labelled row (unlabelled test rows carry -1)."""
    return raw >= 0, raw.astype("int64")


def entailment_or_neutral(raw: Any) -> tuple[Any, Any]:
    """MNLI: keep entailment (0) and neutral (1); contradiction (2) is dropped, as in the paper."""
    return (raw == 0) | (raw == 1), raw.astype("int64")


def score_at_least_3(raw: Any) -> tuple[Any, Any]:
    """STS-B: a similarity score in [0, 5], binarised at 3."""
    return raw >= 0, (raw >= 3.0).astype("int64")


#: config, text column, pair column, validation split, label names, label rule, training size, what, cite.
_TASKS: tuple[tuple[Any, ...], ...] = (
    ("qnli", "question", "sentence", "validation", ("entailment", "not_entailment"), labelled, 104_743,
     "question answering entailment (recast SQuAD)", "Rajpurkar et al. 2016, SQuAD, EMNLP"),
    ("mrpc", "sentence1", "sentence2", "validation", ("not_equivalent", "equivalent"), labelled, 3_668,
     "paraphrase", "Dolan & Brockett 2005, Automatically constructing a corpus of sentential paraphrases, IWP"),
    ("sst2", "sentence", None, "validation", ("negative", "positive"), labelled, 67_349,
     "sentiment", "Socher et al. 2013, Recursive deep models for semantic compositionality, EMNLP"),
    ("qqp", "question1", "question2", "validation", ("not_duplicate", "duplicate"), labelled, 363_846,
     "duplicate questions", "Iyer, Dandekar & Csernai 2017, First Quora dataset release: question pairs"),
    ("cola", "sentence", None, "validation", ("unacceptable", "acceptable"), labelled, 8_551,
     "grammatical acceptability", "Warstadt, Singh & Bowman 2019, Neural network acceptability judgments, TACL"),
    ("mnli", "premise", "hypothesis", "validation_matched", ("entailment", "neutral"), entailment_or_neutral,
     261_802, "entailment vs neutral", "Williams, Nangia & Bowman 2018, MultiNLI, NAACL"),
    ("rte", "sentence1", "sentence2", "validation", ("entailment", "not_entailment"), labelled, 2_490,
     "textual entailment", "Dagan et al. 2006; Bar Haim et al. 2006; Giampiccolo et al. 2007; Bentivogli et al. 2009"),
    ("stsb", "sentence1", "sentence2", "validation", ("score_below_3", "score_at_least_3"), score_at_least_3,
     5_749, "semantic similarity, binarised at 3", "Cer et al. 2017, SemEval-2017 Task 1, SemEval"),
)  # fmt: skip

SPECS: tuple[TaskSpec, ...] = tuple(
    register(
        TaskSpec(
            name=f"glue/{config}",
            label_names=label_names,
            title=f"GLUE {config.upper()}: {what}",
            licence=_LICENCE,
            url="https://gluebenchmark.com/",
            cite=f"{cite}; {_GLUE}",
            order=100 + i,
            hub=HubSource(HUB_ID, config, text, pair, validation, rule),
            train_size=train_size,
        )
    )
    for i, (config, text, pair, validation, label_names, rule, train_size, what, cite) in enumerate(_TASKS)
)
