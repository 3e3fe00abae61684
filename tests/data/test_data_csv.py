"""CSV time series: windows, time split, and each kind of bad file named precisely."""

import numpy as np
import pytest

from edgernn.data import load_csv
from edgernn.data.files import CO2_CSV
from edgernn.runtime.errors import DataError


def write(tmp_path, text):
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def series_csv(tmp_path, n=100):
    rows = "\n".join(f"{i},{np.sin(i / 5):.5f},{i % 7}" for i in range(n))
    return write(tmp_path, "t,load,dow\n" + rows + "\n")


def test_windows_and_targets(tmp_path):
    d = load_csv(series_csv(tmp_path), "load", ["load", "dow"], window=10, horizon=2)
    assert d.train.X.shape[1:] == (10, 2) and d.input_size == 2
    assert len(d.train) + len(d.val) + len(d.test) == 100 - 10 - 2 + 1
    first = d.train.y[0, 0] * d.preprocessing["target_std"][0] + d.preprocessing["target_mean"][0]
    assert first == pytest.approx(np.sin(11 / 5), abs=1e-4)
    assert d.source["baseline"]["name"] == "last observed value"


def test_difference_learns_changes_against_a_no_change_baseline(tmp_path):
    path = write(tmp_path, "t,v\n" + "\n".join(f"{i},{i * i}" for i in range(60)) + "\n")
    d = load_csv(path, "v", window=5, difference=True)
    first = d.train.y[0, 0] * d.preprocessing["target_std"][0] + d.preprocessing["target_mean"][0]
    assert first == pytest.approx(6 * 6 - 5 * 5)  # change into row 6 after 5 changes seen
    assert d.source["baseline"]["name"] == "no change" and d.source["differenced"]


def test_shipped_co2_file_is_a_valid_example():
    d = load_csv(CO2_CSV, "co2", window=52)
    assert d.output_size == 1 and len(d.test) > 300


def test_unknown_column_lists_the_columns(tmp_path):
    message = r"unknown column\(s\) \['price'\]; the file has \['t', 'load', 'dow'\]"
    with pytest.raises(DataError, match=message):
        load_csv(series_csv(tmp_path), "price")


def test_non_numeric_cell_names_column_and_line(tmp_path):
    path = write(tmp_path, "t,load\n0,1.0\n1,high\n2,3.0\n")
    with pytest.raises(DataError, match="column 'load' is not numeric: line 3 holds 'high'"):
        load_csv(path, "load", window=1)


@pytest.mark.parametrize("cell", ["", "nan", "inf"])
def test_nan_or_gap_names_column_and_line(tmp_path, cell):
    path = write(tmp_path, f"t,load\n0,1.0\n1,2.0\n2,{cell}\n3,4.0\n")
    with pytest.raises(DataError, match="column 'load'.*line 4"):
        load_csv(path, "load", window=1)


def test_series_shorter_than_window(tmp_path):
    with pytest.raises(DataError, match="30 rows is too short for window=40.*at least"):
        load_csv(series_csv(tmp_path, n=30), "load", window=40)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no CSV file"):
        load_csv(tmp_path / "nope.csv", "load")
