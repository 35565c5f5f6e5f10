"""Progress is shown as plain lines in logs and as a Rich bar on a terminal."""

from __future__ import annotations

import io

from stopnet.core.progress import PlainProgress, show_progress


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_at_each_tenth_and_at_the_end():
    out, clock = io.StringIO(), _Clock()
    progress = PlainProgress("score", "rows", out, clock)
    for done in range(0, 1001, 7):
        clock.t = done / 100
        progress(done, 1000)
    clock.t = 10.0
    progress(1000, 1000)
    progress(1000, 1000)  # once finished, nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines  # one a tenth
    assert lines[-1] == "score: 1,000 / 1,000 rows (100%), 100/s, 0 s left"
    assert "(50%)" in lines[4] and "s left" in lines[4]
    percents = [int(line.split("(")[1].split("%")[0]) for line in lines]
    assert percents == sorted(percents)


def test_unknown_total_says_the_count_and_rate():
    out, clock = io.StringIO(), _Clock()
    progress = PlainProgress("import", "rows", out, clock)
    clock.t = 2.0
    progress(5000, None)
    assert out.getvalue().strip() == "import: 5,000 rows, 2,500/s"


def test_not_a_terminal_gives_plain_lines():
    out = io.StringIO()
    with show_progress("backup", "rows", stream=out) as progress:
        progress(10, 10)
    assert out.getvalue().startswith("backup: 10 / 10 rows (100%)")
    assert "\x1b[" not in out.getvalue()


def test_terminal_gives_a_rich_bar_with_count_and_time_left():
    out = io.StringIO()
    with show_progress("train", "trees", stream=out, terminal=True) as progress:
        for done in range(1, 301):
            progress(done, 300)
    text = out.getvalue()
    assert "\x1b[" in text  # drawn with terminal codes
    assert "train" in text and "300/300" in text and "trees" in text and "100%" in text
