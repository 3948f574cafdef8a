"""``sklearn-budget allocate`` a chunk of rows at a time (files larger than memory)."""

import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_budget import TwoStageBudgetAllocator
from sklearn_budget._rows_on_disk import RowsOnDisk
from sklearn_budget.cli import main
from sklearn_budget.datasets import make_marketing_rct

from conftest import saved_t_learner


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunks")
    est, X = saved_t_learner(folder, random_state=1)
    users = make_marketing_rct(n_samples=1000, random_state=2)
    users = pd.DataFrame(users.X, columns=X.columns)
    users.insert(0, "id", [f"u{i}" for i in range(1000)])  # ids that are text
    users.to_csv(folder / "users.csv", index=False)
    return est, folder, users


def _run(saved, *options, out="o.csv", input="users.csv"):
    est, folder, users = saved
    path = folder / "runs" / out
    rc = main(["allocate", "--model", str(folder / "model.joblib"), "--input",
               str(folder / input), "--output", str(path), "--quiet", *options])
    return rc, path


def test_chunks_give_the_in_memory_result_at_a_budget_per_user(saved, capsys):
    est, folder, users = saved
    X = users.drop(columns="id")
    rc, path = _run(saved, "--budget", "0.6", "--chunk-rows", "96", "--with-uplift")
    assert rc == 0
    got = pd.read_csv(path)
    assert list(got.id) == list(users.id)  # every row once, in the input's order
    np.testing.assert_array_equal(got.treatment, est.allocate(X, budget=0.6))
    np.testing.assert_allclose(got[[f"cost_uplift_{k}" for k in est.levels_]],
                               est.predict_cost(X), rtol=1e-12)
    counts = pd.Series(est.allocate(X, budget=0.6)).value_counts()
    assert f"Allocated 1000 users -> {path}" in capsys.readouterr().out
    assert sorted(got.treatment.value_counts().items()) == sorted(counts.items())


@pytest.mark.parametrize("chunk_rows", [96, 1000, 5000])
def test_a_total_budget_is_one_problem_over_all_chunks(saved, chunk_rows):
    pytest.importorskip("dask")
    est, folder, users = saved
    X = users.drop(columns="id")
    rc, path = _run(saved, "--total-budget", "400", "--chunk-rows", str(chunk_rows),
                    "--with-uplift")
    assert rc == 0
    got = pd.read_csv(path)
    assert list(got.id) == list(users.id)
    expected = est.allocate(X, total_budget=400)
    np.testing.assert_array_equal(got.treatment, expected)
    np.testing.assert_allclose(got[[f"revenue_uplift_{k}" for k in est.levels_]],
                               est.predict(X), rtol=1e-12)
    c = est.predict_cost(X)
    arm = got.treatment.to_numpy()
    assert 395 < c[arm > 0, arm[arm > 0] - 1].sum() <= 400  # spent, never over
    assert not list((folder / "runs").glob(".sklearn-budget-*"))  # scratch removed


def test_a_total_budget_without_dask_is_solved_in_memory(saved, monkeypatch, capsys):
    est, folder, users = saved
    monkeypatch.setitem(sys.modules, "dask.array", None)  # import dask.array fails
    rc, path = _run(saved, "--total-budget", "400", "--chunk-rows", "128")
    assert rc == 0
    np.testing.assert_array_equal(pd.read_csv(path).treatment,
                                  est.allocate(users.drop(columns="id"), total_budget=400))
    assert "dask is not installed, so the budget problem over 1000 users is solved in " \
           "memory" in capsys.readouterr().err


def test_no_id_column_with_a_total_budget(saved, capsys):
    est, folder, users = saved
    users.drop(columns="id").to_csv(folder / "no_id.csv", index=False)
    rc, path = _run(saved, "--total-budget", "300", "--chunk-rows", "300", input="no_id.csv")
    assert rc == 0
    got = pd.read_csv(path)
    assert list(got.columns) == ["treatment"] and len(got) == 1000
    np.testing.assert_array_equal(got.treatment,
                                  est.allocate(users.drop(columns="id"), total_budget=300))


def test_parquet_in_and_out_in_chunks(saved):
    pytest.importorskip("pyarrow")
    est, folder, users = saved
    users.to_parquet(folder / "users.parquet", index=False)
    for options in (["--budget", "0.6"], ["--total-budget", "400"]):
        rc, path = _run(saved, *options, "--chunk-rows", "96", input="users.parquet",
                        out="o.parquet")
        assert rc == 0
        got = pd.read_parquet(path)
        assert list(got.id) == list(users.id)
        X = users.drop(columns="id")
        expected = (est.allocate(X, budget=0.6) if options[0] == "--budget"
                    else est.allocate(X, total_budget=400))
        np.testing.assert_array_equal(got.treatment, expected)


def test_a_bad_cell_in_a_later_chunk_leaves_no_output(saved, capsys):
    est, folder, users = saved
    bad = users.astype({"x3": object})
    bad.loc[777, "x3"] = "abc"
    bad.to_csv(folder / "bad_late.csv", index=False)
    for options in (["--budget", "0.6"], ["--total-budget", "400"]):
        rc, path = _run(saved, *options, "--chunk-rows", "100", input="bad_late.csv",
                        out="new/sub/o.csv")
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert ("Feature column 'x3' has 1 blank or non-numeric value(s) among data rows 701 "
                "to 800, the first ('abc') in data row 778.") in err
        assert not path.exists() and not (folder / "runs" / "new").exists()


def test_a_failed_run_keeps_the_previous_output(saved, capsys):
    est, folder, users = saved
    rc, path = _run(saved, "--chunk-rows", "100")
    before = path.read_bytes()
    with open(folder / "torn.csv", "w") as f:  # extra fields on the last line: the last chunk
        f.write(users.to_csv(index=False))
        f.write("u_extra,1,2,3,4,5,6,7,8,9,10,11\n")
    rc, path = _run(saved, "--chunk-rows", "100", input="torn.csv")
    err = capsys.readouterr().err
    assert rc == 2 and "Cannot read" in err and err.count("\n") == 1
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".sklearn-budget-*"))


def test_chunk_rows_is_checked_when_parsed(saved, capsys):
    with pytest.raises(SystemExit) as exc:
        _run(saved, "--chunk-rows", "0")
    assert exc.value.code == 2 and "--chunk-rows: must be >= 1" in capsys.readouterr().err


def test_rows_on_disk_appends_and_reads_back(tmp_path):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3))
    rows = RowsOnDisk(tmp_path / "x.bin", np.float64, 3)
    assert rows.shape == (0, 3) and rows.memmap().shape == (0, 3)
    for start in range(0, 1000, 300):
        rows.append(x[start:start + 300])
    assert rows.shape == (1000, 3) and len(rows) == 1000
    np.testing.assert_array_equal(rows[250:260], x[250:260])
    np.testing.assert_array_equal(da.from_array(rows, chunks=(128, 3)).compute(), x)
    with pytest.raises(ValueError, match="rows of width 3"):
        rows.append(np.zeros((2, 4)))
    np.save(tmp_path / "x.npy", x)
    npy = RowsOnDisk.npy(tmp_path / "x.npy")
    assert npy.shape == (1000, 3) and npy.dtype == np.float64
    np.testing.assert_array_equal(npy[990:], x[990:])
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    with pytest.raises(ValueError, match="no 2-D C-order array"):
        RowsOnDisk.npy(tmp_path / "f.npy")


def test_csv_ids_are_text_whatever_the_chunk_holds(saved):
    # read per chunk, "007" became 7 and a later chunk's text ids broke the Parquet output
    est, folder, users = saved
    mixed = users.copy()
    mixed["id"] = [f"{i:03d}" for i in range(700)] + [""] * 200 + [f"x{i}" for i in range(100)]
    mixed.to_csv(folder / "mixed_ids.csv", index=False)
    for out in ("m.parquet", "m.csv"):
        for options in (["--budget", "0.6"], ["--total-budget", "400"]):
            rc, path = _run(saved, *options, "--chunk-rows", "100", input="mixed_ids.csv",
                            out=out)
            assert rc == 0
            got = (pd.read_parquet(path) if out.endswith("parquet") else
                   pd.read_csv(path, dtype={"id": str}, keep_default_na=False))
            ids = got.id.fillna("").tolist()
            assert ids == mixed.id.tolist()


def test_parquet_errors_are_one_line(saved, monkeypatch, capsys):
    pytest.importorskip("pyarrow")
    est, folder, users = saved
    (folder / "junk.parquet").write_bytes(b"not a parquet file at all")
    rc, path = _run(saved, input="junk.parquet")
    err = capsys.readouterr().err
    assert rc == 2 and "Cannot read" in err and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # pyarrow not installed
    for options in (dict(input="junk.parquet"), dict(out="o.parquet")):
        assert _run(saved, **options)[0] == 2
        err = capsys.readouterr().err
        assert "Parquet needs pyarrow: pip install 'sklearn-budget[parquet]'" in err


def test_disk_errors_and_a_terminated_run_leave_nothing_behind(saved, monkeypatch, capsys):
    import errno
    import os
    import signal

    est, folder, users = saved

    def full(self, block):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(RowsOnDisk, "append", full)
        rc, path = _run(saved, "--total-budget", "400", "--chunk-rows", "100",
                        out="full/o.csv")
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "Cannot write scratch files beside --output" in err and "No space left" in err
    assert not (folder / "runs" / "full").exists()

    def terminated(self, block):  # a scheduler's time limit in the middle of the run
        os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(RowsOnDisk, "append", terminated)
        with pytest.raises(SystemExit) as exc:
            _run(saved, "--total-budget", "400", "--chunk-rows", "100", out="term/o.csv")
    assert exc.value.code == 128 + signal.SIGTERM
    assert not (folder / "runs" / "term").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_nan_predictions_name_the_users_data_row(saved, monkeypatch, capsys):
    est, folder, users = saved
    original = TwoStageBudgetAllocator._predict_uplift

    def nan_for_u550(self, X):
        r, c = original(self, X)
        hit = np.flatnonzero(np.isclose(X[:, 0], users.x0[550]))
        r[hit] = np.nan
        return r, c

    monkeypatch.setattr(TwoStageBudgetAllocator, "_predict_uplift", nan_for_u550)
    for options in (["--budget", "0.6"], ["--total-budget", "400"]):
        rc, path = _run(saved, *options, "--chunk-rows", "100")
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert "predicted NaN or infinite uplifts for 1 of 100 users in rows 501..600 of " \
               "the data rows of" in err and "(first at row 551)" in err


def test_archives_are_refused_and_compressed_csv_works(saved, capsys):
    est, folder, users = saved
    rc, path = _run(saved, "--chunk-rows", "100", out="o.csv.zip")
    assert rc == 2 and "an archive cannot be written a chunk at a time" in \
        capsys.readouterr().err
    rc, path = _run(saved, "--chunk-rows", "100", out="o.csv.gz")
    assert rc == 0
    np.testing.assert_array_equal(pd.read_csv(path).treatment,
                                  est.allocate(users.drop(columns="id")))
    # other names were written as CSV text that Excel or pandas then failed to open
    for out in ("o.xlsx", "o.json", "o.feather", "o", "o.tsv"):
        rc, path = _run(saved, "--chunk-rows", "100", out=out)
        err = capsys.readouterr().err
        assert rc == 2 and "name it .csv (or .txt, either with .gz" in err
        assert not path.exists()
    rc, path = _run(saved, "--chunk-rows", "100", out="o.txt.bz2")
    assert rc == 0 and len(pd.read_csv(path)) == len(users)


def test_an_output_symlink_is_written_through(saved, tmp_path):
    est, folder, users = saved
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = folder / "runs" / "link.csv"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    rc, path = _run(saved, "--chunk-rows", "100", out="link.csv")
    assert rc == 0 and path.is_symlink()
    assert len(pd.read_csv(target)) == 1000 and (target.stat().st_mode & 0o777) == 0o640


def test_a_date_feature_is_not_read_as_nanoseconds(saved, capsys):
    pytest.importorskip("pyarrow")
    est, folder, users = saved
    users.assign(x2=pd.Timestamp("2024-05-01")).to_parquet(folder / "dates.parquet")
    rc, path = _run(saved, input="dates.parquet")
    err = capsys.readouterr().err
    assert rc == 2 and "Feature column 'x2' has 1000 blank or non-numeric value(s), the " \
        "first ('2024-05-01 00:00:00') in data row 1" in err


def test_a_pipeline_gets_the_columns_as_read_for_its_encoders_and_imputers(tmp_path, capsys):
    # a text column one-hot encoded and blanks imputed by the pipeline's own steps were
    # refused as "blank or non-numeric" cells although pipe.allocate(frame) took them
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from sklearn_budget import rct_target
    from sklearn_budget.baselines import make_meta_learner
    from sklearn_budget.pipeline import make_budget_pipeline

    d = make_marketing_rct(n_samples=1500, random_state=0)
    frame = pd.DataFrame(d.X[:, :3], columns=["a", "b", "c"]).assign(
        region=np.random.default_rng(0).choice(["north", "south", "east"], 1500))
    frame.loc[::7, "b"] = np.nan
    steps = make_column_transformer(
        (OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["region"]),
        (SimpleImputer(), ["a", "b", "c"]))
    pipe = make_budget_pipeline(steps, TwoStageBudgetAllocator(
        make_meta_learner("T", Ridge()), budget=0.5)).fit(
        frame, rct_target(d.treatment, d.revenue, d.cost))
    joblib.dump(pipe, tmp_path / "model.joblib")
    users = frame.iloc[:300].copy()
    users.insert(0, "id", np.arange(300))
    users.to_csv(tmp_path / "users.csv", index=False)
    args = ["allocate", "--model", str(tmp_path / "model.joblib"), "--input",
            str(tmp_path / "users.csv"), "--output", str(tmp_path / "o.csv"), "--quiet",
            "--chunk-rows", "64"]
    assert main(args) == 0
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "o.csv").treatment,
                                  pipe.allocate(users.drop(columns="id")))
    users = users.astype({"c": object})
    users.loc[150, "c"] = "unknown"  # a cell the imputer cannot read: the chunk's rows named
    users.to_csv(tmp_path / "users.csv", index=False)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert ("The model refused data rows 129 to 192 of" in err and "feature column 'c' has "
            "the text 'unknown' in data row 151." in err)
    # a pipeline whose steps do not impute: a blank cell is named as before (sklearn's
    # several-line "Input X contains NaN" came instead), in the first chunk before any note
    scaled = make_budget_pipeline(StandardScaler(), TwoStageBudgetAllocator(
        make_meta_learner("T", Ridge()), budget=0.5)).fit(
        frame[["a", "c"]], rct_target(d.treatment, d.revenue, d.cost))
    joblib.dump(scaled, tmp_path / "model.joblib")
    users = frame[["a", "c"]].iloc[:300].copy()
    users.loc[5, "c"] = np.nan
    users.to_csv(tmp_path / "users.csv", index=False)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"sklearn-budget allocate: error: The model refused data rows 1 to 64 of "
        f"{str(tmp_path / 'users.csv')!r}: feature column 'c' has a blank cell in data row "
        "6."]
