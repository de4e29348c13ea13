"""The terminal's progress lines: one per stage in a log, honest rates, time left."""

import io

from embeddings.engine.progress import TerminalProgress, describe_progress


def test_a_stage_is_written_once_in_a_log_however_often_it_reports():
    stream = io.StringIO()  # not a terminal: a log file, docker logs
    bar = TerminalProgress(stream)
    for done in [*range(57), 56]:  # its end reported twice
        bar("embedding images", done, 56)
    bar("training", 3, 3, loss=0.25)
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        ["embedding images", "56/56", "100%"],
        ["training", "3/3", "100%"],
    ]
    assert lines[1].endswith("loss 0.2500")
    assert "/s" not in stream.getvalue()  # no rate computed from a jump out of a cache


def test_time_left_comes_from_the_wall_clock_since_the_stage_began():
    line = describe_progress("pretraining", 12, 30, 65.0, {})
    assert line == "pretraining  12/30  40%  1 min 5 s, about 1 min 38 s left"
    assert describe_progress("indexing", 1, 3, 0.5, {}).endswith("0.5 s")  # too soon to guess


def test_time_left_counts_the_units_done_since_the_first_report():
    """An epoch loop reports at each epoch's end: the stage's clock starts at the first
    report, by when one epoch was already done; it must not count towards the rate."""
    line = describe_progress("pretraining backbone", 2, 16, 260.0, {}, first_done=1)
    assert line.endswith("4 min 20 s, about 60 min 40 s left")  # 14 epochs at 260 s each
    assert describe_progress("pretraining backbone", 1, 16, 0.0, {}, first_done=1).endswith(
        "0.0 s"
    )  # nothing measured yet: no guess
