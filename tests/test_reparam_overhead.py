"""benchmarks/reparam_overhead.py: the control timed beside the variants, and the paired
ratios' spread it prints (the timings themselves are not asserted: speed goals are not tests)."""

import pytest

from benchmarks import reparam_overhead as ro


def test_paired_spread_is_the_median_and_quartiles_of_the_per_round_ratios():
    times = [2.0, 3.0, 5.0, 4.0, 1.0]
    base = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert ro.paired_spread(times, base) == (3.0, 2.0, 4.0)
    # each round's time is divided by plain's of the same round, not by plain's median
    assert ro.paired_spread([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == (2.0, 2.0, 2.0)
    assert ro.paired_spread([1.5], [1.0]) == (1.5, 1.5, 1.5)


def test_the_control_is_timed_unless_asked_not_to():
    assert ro.parse_args(["--variants", "arctan"]).variants == ["plain", ro.CONTROL, "arctan"]
    assert ro.parse_args(["--variants", "arctan", "--no-control"]).variants == ["plain", "arctan"]
    # the default list names each variant once, the control right after plain
    default = ro.parse_args([]).variants
    assert default[:2] == ["plain", ro.CONTROL] and len(default) == len(set(default))


@pytest.mark.slow
def test_the_report_shows_the_control_and_the_paired_spread(capsys):
    # no --threads: it would set torch's thread count for the rest of this process
    ro.main(["--device", "cpu", "--batch", "2", "--steps", "1", "--rounds", "2", "--warmup",
             "0", "--variants", "plain", "arctan"])
    out = capsys.readouterr().out
    train, infer = out.split("inference (eager)")
    for section, variants in ((train, ["plain", ro.CONTROL, "arctan"]),
                              (infer, ["plain", ro.CONTROL, "baked arctan", "companded arctan"])):
        assert "paired ratio, median [quartiles]" in section
        rows = [line[2:20].strip() for line in section.splitlines()
                if line.startswith("  ") and "ms/step" not in line]
        assert rows == variants
