"""Readers of series classification files (.ts, .arff, .tsv/.csv) on small hand-written files."""

import numpy as np
import pytest

from rnnkit.series.files import is_series_file, read_series_file

TS_UNI = """% a comment
@problemName Tiny
@univariate true
@classLabel true up down
@data
1.0,2.0,3.0,4.0:up
4,3,2,1:down
1.5,2.5,3.5,?:up
"""

TS_MULTI = """@problemName Multi
@univariate false
@equalLength false
@classLabel true a b
@data
1,2,3:10,20,30:a
4,5:40,50:b
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_ts_univariate_trims_trailing_missing(tmp_path):
    data = read_series_file(_write(tmp_path, "t.ts", TS_UNI))
    assert data.name == "Tiny" and data.classes == ["up", "down"]
    assert data.labels == ["up", "down", "up"]
    assert [s.shape for s in data.series] == [(4, 1), (4, 1), (3, 1)]
    np.testing.assert_array_equal(data.series[2][:, 0], [1.5, 2.5, 3.5])
    assert data.series[0].dtype == np.float32


def test_ts_multivariate_unequal_lengths(tmp_path):
    data = read_series_file(_write(tmp_path, "m.ts", TS_MULTI))
    assert [s.shape for s in data.series] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(data.series[1], [[4, 40], [5, 50]])
    assert data.num_channels == 2


def test_ts_regression_archive_refused(tmp_path):
    path = _write(tmp_path, "r.ts", "@problemName Reg\n@targetLabel true\n@data\n1,2,3:0.5\n")
    with pytest.raises(ValueError, match="Reg is a regression archive .@targetlabel true.; "
                                         "rnnkit classify needs class labels"):
        read_series_file(path)


@pytest.mark.parametrize("text, match", [
    ("@classLabel true a b\n@data\n1,x,3:a\n", r"line 3: channel 1: value 2 is 'x'"),
    ("@classLabel true a b\n@data\n1,?,3:a\n", "missing or infinite value at step 2"),
    ("@classLabel true a b\n@data\n1,2:3,4:a\n5,6:b\n", "1 channels, but the first series has 2"),
    ("@classLabel true a b\n@data\n1,2,3:c\n", r"labels \['c'\] are not among"),
    ("just some text\n", "expected an @ header line"),
    ("@classLabel true a b\n", "no @data line"),
    ("@classLabel true a b\n@timeStamps true\n@data\n(0,1),(1,2):a\n", "time-stamped"),
])
def test_ts_corrupt_files_name_the_problem(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_series_file(_write(tmp_path, "bad.ts", text))


def test_ts_unlabelled(tmp_path):
    data = read_series_file(_write(tmp_path, "u.ts", "@classLabel false\n@data\n1,2,3\n4,5\n"))
    assert data.labels is None and [s.shape for s in data.series] == [(3, 1), (2, 1)]


ARFF_UNI = """@relation Tiny
@attribute t1 numeric
@attribute t2 numeric
@attribute t3 numeric
@attribute target {a,b}
@data
1,2,3,a
3,2,1,b
0.5,1.5,?,a
"""

ARFF_MULTI = """@relation Multi
@attribute series relational
  @attribute t1 numeric
  @attribute t2 numeric
  @attribute t3 numeric
@end series
@attribute class {x,y}
@data
'1,2,3\\n10,20,30',x
'4,5,6\\n40,50,60',y
"""


def test_arff_univariate(tmp_path):
    data = read_series_file(_write(tmp_path, "t.arff", ARFF_UNI))
    assert data.labels == ["a", "b", "a"] and data.classes == ["a", "b"]
    assert [s.shape for s in data.series] == [(3, 1), (3, 1), (2, 1)]
    np.testing.assert_array_equal(data.series[1][:, 0], [3, 2, 1])


def test_arff_relational_multivariate(tmp_path):
    data = read_series_file(_write(tmp_path, "m.arff", ARFF_MULTI))
    assert data.labels == ["x", "y"]
    np.testing.assert_array_equal(data.series[1], [[4, 40], [5, 50], [6, 60]])


def test_arff_numeric_last_attribute_refused(tmp_path):
    text = "@relation R\n@attribute t1 numeric\n@attribute target numeric\n@data\n1,0.5\n"
    with pytest.raises(ValueError, match="regression archive"):
        read_series_file(_write(tmp_path, "r.arff", text))
    with pytest.raises(ValueError, match="not a readable ARFF"):
        read_series_file(_write(tmp_path, "x.arff", "garbage\n"))


def test_tsv_ucr_layout_with_nan_padding(tmp_path):
    path = _write(tmp_path, "t.tsv", "1\t0.1\t0.2\t0.3\n-1\t0.5\t0.4\tNaN\n1\t1\t2\t3\n")
    data = read_series_file(path)
    assert data.labels == ["1", "-1", "1"] and data.classes == ["-1", "1"]
    assert [s.shape for s in data.series] == [(3, 1), (2, 1), (3, 1)]
    assert is_series_file(path)


def test_csv_header_skipped_and_text_file_not_series(tmp_path):
    data = read_series_file(_write(tmp_path, "t.csv", "label,t1,t2\nA,1,2\nB,3,4\n"))
    assert data.labels == ["A", "B"] and [s.shape for s in data.series] == [(2, 1), (2, 1)]
    assert not is_series_file(_write(tmp_path, "text.tsv", "pos\ta fine film\nneg\tdull\n"))
    assert not is_series_file(_write(tmp_path, "text.txt", "pos\t5 stars\nneg\t1 star\n"))


def test_tsv_first_column_not_a_label(tmp_path):
    rng = np.random.default_rng(0)
    rows = "\n".join("\t".join(f"{v:.4f}" for v in rng.normal(size=5)) for _ in range(30))
    with pytest.raises(ValueError, match="first column has 30 different values .* put the "
                                         "label first"):
        read_series_file(_write(tmp_path, "nolabel.tsv", rows + "\n"))
    with pytest.raises(ValueError, match="line 2: value 'x' is not a number"):
        read_series_file(_write(tmp_path, "bad.tsv", "1\t1\t2\n2\tx\t3\n"))


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_series_file(tmp_path / "none.ts")
    with pytest.raises(ValueError, match="unknown series file type '.json'"):
        read_series_file(_write(tmp_path, "x.json", "{}"))
