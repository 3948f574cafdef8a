"""The command line and the comparison engine behind it."""

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from sklearn_budget import rct_target
from sklearn_budget.cli import main
from sklearn_budget.comparison import (
    ComparisonData,
    compare_allocators,
    make_allocator,
    summarize,
)
from sklearn_budget.datasets import make_marketing_rct

from conftest import saved_t_learner


def _factory(n=2000):
    def factory(seed):
        d = make_marketing_rct(n_samples=n, random_state=seed)
        return ComparisonData.from_arrays("toy", d.X, d.treatment, d.revenue, d.cost,
                                          true_revenue=d.true_revenue, true_cost=d.true_cost,
                                          random_state=seed)
    return factory


def test_compare_oracle_and_random_against_truth():
    res = compare_allocators(_factory(), ["random", "oracle"], budgets=(0.3, 0.6),
                             seeds=(0, 1), progress=False)
    assert len(res) == 8 and res.attrs["complete"]
    oracle = res[res.method == "oracle"]
    np.testing.assert_allclose(oracle.oracle_fraction, 1.0)
    assert (oracle.spend_ratio <= 1 + 1e-9).all()
    rand = res[res.method == "random"]
    assert (rand.oracle_fraction < 0.9).all() and (rand.spend_ratio <= 1 + 1e-9).all()
    # the oracle's EOM value beats random on the same test users (on average)
    assert oracle.eom_revenue.mean() > rand.eom_revenue.mean()
    table = summarize(res)
    assert list(table.method) == ["random", "oracle"] * 2
    assert "±" in table.loc[0, "oracle_fraction"]


def test_comparison_data_keeps_truth_aligned_with_both_halves():
    d = make_marketing_rct(n_samples=400, random_state=0)
    data = _factory(400)(0)
    for X, rev, cost in [(data.X_train, data.true_revenue_train, data.true_cost_train),
                         (data.X_test, data.true_revenue, data.true_cost)]:
        # each row's truth is the generator's truth of the user with those features
        rows = [int(np.flatnonzero((d.X == x).all(1))[0]) for x in X]
        np.testing.assert_array_equal(rev, d.true_revenue[rows])
        np.testing.assert_array_equal(cost, d.true_cost[rows])
    real = ComparisonData.from_arrays("real", d.X, d.treatment, d.revenue, d.cost)
    assert real.true_revenue_train is None and not real.has_truth


def test_compare_time_limit_returns_partial_results():
    res = compare_allocators(_factory(), ["random", "oracle"], seeds=(0, 1), progress=False,
                             time_limit=0.0)
    assert res.empty and not res.attrs["complete"]


def test_compare_real_data_without_truth_skips_oracle():
    d = make_marketing_rct(n_samples=2000, random_state=0)

    def factory(seed):
        return ComparisonData.from_arrays("real", d.X, d.treatment, d.revenue, d.cost,
                                          random_state=seed)

    res = compare_allocators(factory, ["random", "oracle"], progress=False)
    assert list(res.method) == ["random"]
    assert "oracle_fraction" not in res and np.isfinite(res.eom_revenue).all()


def test_r_learner_baseline_is_seeded():
    # causalml's R-learner draws its cross-fitting folds from its own random_state
    pytest.importorskip("causalml")
    pytest.importorskip("lightgbm")
    d = make_marketing_rct(n_samples=1500, random_state=0)
    y = rct_target(d.treatment, d.revenue, d.cost)
    preds = [make_allocator("R", 1.0, random_state=3, fast=True).fit(d.X, y).predict(d.X)
             for _ in range(2)]
    np.testing.assert_array_equal(preds[0], preds[1])
    from sklearn_budget.baselines import make_meta_learner
    assert make_meta_learner("R", random_state=5).random_state == 5
    make_meta_learner("T", random_state=5)  # no seed of its own: accepted, not passed on


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown method"):
        make_allocator("Z", 1.0)
    with pytest.raises(ValueError, match="Unknown method"):
        compare_allocators(_factory(), ["Z"], progress=False)


def test_compare_refuses_one_value_for_a_sequence():
    # methods="random" ran as the methods 'r', 'a', ...; budgets=0.3 / seeds=0 raised
    # "'float' object is not iterable"
    for name, value in (("methods", "random"), ("budgets", 0.3), ("seeds", 0)):
        with pytest.raises(TypeError, match=f"`{name}` must be a sequence.*{name}=\\("):
            compare_allocators(_factory(), **{"methods": ["random"], name: value},
                               progress=False)


def test_comparison_data_checks_the_truth_against_the_users():
    # a truth of other users (more rows) was cut to the split's rows without a word; fewer
    # rows raised a raw IndexError
    d = make_marketing_rct(n_samples=200, random_state=0)
    for rows, cols in ((300, 4), (150, 4), (200, 3)):
        truth = np.ones((rows, cols))
        with pytest.raises(ValueError, match=r"shape \(200, 4\) here; got"):
            ComparisonData.from_arrays("x", d.X, d.treatment, d.revenue, d.cost,
                                       true_revenue=truth, true_cost=truth)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ComparisonData.from_arrays("x", d.X, d.treatment, d.revenue, d.cost,
                                   true_revenue=np.full((200, 4), np.nan),
                                   true_cost=np.ones((200, 4)))


def test_kept_predictions_are_keyed_by_the_budget_fraction():
    res = compare_allocators(_factory(), ["random"], budgets=(0.3,), progress=False,
                             keep_predictions=True)
    assert list(res.attrs["predictions"]) == [(0, 0.3, "random")]
    assert res["budget_fraction"].tolist() == [0.3]


def test_compare_refuses_repeats_as_the_command_line_does():
    # seeds=[0, 0] ran twice and summarize counted "seeds: 2", "+- 0.000"
    for kwargs in ({"seeds": [0, 0]}, {"budgets": [0.3, 0.3]},
                   {"methods": ["random", "random"]}):
        with pytest.raises(ValueError, match="more than once"):
            compare_allocators(_factory(), **{"methods": ["random"], **kwargs},
                               progress=False)


def test_value_at_equal_spend_is_nan_when_no_multiplier_meets_the_budget():
    # a model predicting a negative cost treats those users at any multiplier: its policy
    # at "equal spend" overspent the budget 4-21 times and scored above the oracle
    from sklearn_budget._comparison_scores import _score

    data = _factory()(0)
    tr, tc = data.true_uplift()
    r, c = tr.copy(), np.where(np.arange(len(tc))[:, None] % 5 == 0, -1.0, tc)
    budget = 0.01 * data.budget_scale()
    with pytest.warns(RuntimeWarning, match="at every multiplier its policy's true spend "
                                            "exceeds the budget"):
        row = _score("toy", data, r, c, np.zeros(len(r), int), budget, 0.0, 1.0)
    assert np.isnan(row["equal_spend_fraction"])
    assert np.isfinite(_score("toy", data, tr, tc, np.zeros(len(r), int), budget, 0.0,
                              1.0)["equal_spend_fraction"])


def test_demo_writes_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc = main(["demo", "--quick", "--n-samples", "2000", "--methods", "end-to-end", "random",
               "oracle", "--output", str(tmp_path), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "end-to-end" in out and "true value / oracle" in out
    table = pd.read_csv(tmp_path / "demo.csv")
    assert set(table.method) == {"end-to-end", "random", "oracle"}
    # whether the end-to-end goal phase was kept is recorded; other methods have none
    kept = table.set_index("method").goal_phase_kept
    assert kept["end-to-end"] in (True, False) and kept[["random", "oracle"]].isna().all()
    assert "goal phase kept" in out
    summary = summarize(table).set_index("method").goal_phase_kept
    assert summary["end-to-end"] == f"{int(kept['end-to-end'])}/1"
    assert summary["random"] == summary["oracle"] == ""
    assert (tmp_path / "demo.md").read_text().startswith("| dataset")
    assert (tmp_path / "cost_curves_synthetic-default.png").stat().st_size > 1000


def test_benchmark_time_limit_and_bad_dataset(tmp_path, capsys):
    rc = main(["benchmark", "--datasets", "synthetic", "--methods", "random", "--n-samples",
               "1000", "--time-limit", "0", "--output", str(tmp_path), "--quiet"])
    assert rc == 0
    assert "No fit finished" in capsys.readouterr().out
    assert main(["benchmark", "--datasets", "nope", "--output", str(tmp_path)]) == 2
    assert "Unknown data set" in capsys.readouterr().err
    assert main(["benchmark", "--datasets", "hillstrom=/nonexistent/h.csv",
                 "--output", str(tmp_path)]) == 2
    assert "MineThatData" in capsys.readouterr().err
    assert main(["demo", "--methods", "Z", "--output", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    est, X = saved_t_learner(folder, random_state=0)
    users = X.iloc[:500].copy()
    users.insert(0, "id", np.arange(500) + 1000)
    users.to_csv(folder / "users.csv", index=False)
    return est, folder, users


def test_allocate_command(saved_model, capsys):
    est, folder, users = saved_model
    out = folder / "out" / "assign.csv"
    rc = main(["allocate", "--model", str(folder / "model.joblib"), "--input",
               str(folder / "users.csv"), "--budget", "0.5", "--output", str(out),
               "--with-uplift"])
    assert rc == 0
    got = pd.read_csv(out)
    assert list(got.id) == list(users.id)
    np.testing.assert_array_equal(got.treatment, est.allocate(users.drop(columns="id"),
                                                              budget=0.5))
    assert "revenue_uplift_1" in got and "Allocated 500 users" in capsys.readouterr().out
    rc = main(["allocate", "--model", str(folder / "model.joblib"), "--input",
               str(folder / "users.csv"), "--total-budget", "100", "--output", str(out)])
    assert rc == 0
    spend = est.predict_cost(users.drop(columns="id"))
    assign = pd.read_csv(out).treatment.to_numpy()
    assert spend[assign > 0, assign[assign > 0] - 1].sum() <= 100 + 1e-6


def test_allocate_with_uplift_from_a_saved_pipeline(tmp_path):
    from sklearn.preprocessing import StandardScaler

    from sklearn_budget import EndToEndBudgetAllocator
    from sklearn_budget.pipeline import make_budget_pipeline

    d = make_marketing_rct(n_samples=1500, random_state=0)
    X = pd.DataFrame(d.X, columns=d.feature_names)
    pipe = make_budget_pipeline(StandardScaler(), EndToEndBudgetAllocator(
        budget=1.0, max_epochs=2, warmup_epochs=1, hidden_layer_sizes=(8,), random_state=0))
    pipe.fit(X, rct_target(d.treatment, d.revenue, d.cost))
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    X.iloc[:50].to_csv(tmp_path / "users.csv", index=False)
    out = tmp_path / "assign.csv"
    assert main(["allocate", "--model", str(tmp_path / "pipe.joblib"), "--input",
                 str(tmp_path / "users.csv"), "--output", str(out), "--with-uplift"]) == 0
    got = pd.read_csv(out)
    np.testing.assert_allclose(got[[f"cost_uplift_{k}" for k in (1, 2, 3)]],
                               pipe.predict_cost(X.iloc[:50]), rtol=1e-5)
    np.testing.assert_array_equal(got.treatment, pipe.allocate(X.iloc[:50]))


def test_allocate_errors(saved_model, tmp_path, capsys):
    est, folder, users = saved_model
    model = str(folder / "model.joblib")
    assert main(["allocate", "--model", str(tmp_path / "none.joblib"), "--input", "x.csv",
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["allocate", "--model", model, "--input", str(tmp_path / "none.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 2
    users.drop(columns=["x1"]).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["allocate", "--model", model, "--input", str(tmp_path / "bad.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "missing the model's feature column(s) ['x1']" in capsys.readouterr().err
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    assert main(["allocate", "--model", str(tmp_path / "dict.joblib"), "--input",
                 str(folder / "users.csv"), "--output", str(tmp_path / "o.csv")]) == 2
    assert "not a fitted budget allocator" in capsys.readouterr().err


def test_allocate_user_errors_are_one_line_with_status_2(saved_model, tmp_path, capsys):
    # each of these ended in a traceback with exit status 1
    est, folder, users = saved_model
    model, good = str(folder / "model.joblib"), str(folder / "users.csv")
    text = users.astype({"x2": object})
    text.loc[3, "x2"] = "abc"
    text.to_csv(tmp_path / "text.csv", index=False)
    blank = users.copy()
    blank.loc[5, "x0"] = np.nan
    blank.to_csv(tmp_path / "blank.csv", index=False)
    users.iloc[:0].to_csv(tmp_path / "header.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    from sklearn.base import clone

    joblib.dump(clone(est), tmp_path / "unfitted.joblib")
    out = str(tmp_path / "o.csv")
    cases = [
        (["--model", model, "--input", str(tmp_path / "text.csv")],
         "column 'x2' has 1 blank or non-numeric value(s), the first ('abc') in data row 4"),
        (["--model", model, "--input", str(tmp_path / "blank.csv")],
         "column 'x0' has 1 blank or non-numeric value(s), the first (a blank cell) in data "
         "row 6"),
        (["--model", model, "--input", str(tmp_path / "header.csv")], "has no rows"),
        (["--model", model, "--input", str(tmp_path / "empty.csv")], "Cannot read"),
        (["--model", good, "--input", good], "Cannot load"),
        (["--model", str(tmp_path / "unfitted.joblib"), "--input", good], "unfitted"),
    ]
    for args, message in cases:
        assert main(["allocate", *args, "--output", out]) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["allocate", "--model", model, "--input", good, "--output",
                 str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["allocate", "--model", model, "--input", good, "--budget", "-1", "--output", out])
    assert exc.value.code == 2 and "must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (["--budgets", "0"], "must be >= 1e-06"), (["--budgets", "-0.5"], "must be >= 1e-06"),
    (["--n-samples", "0"], "must be >= 100"), (["--time-limit", "nan"], "must be >= 0"),
    (["--seeds", "x"], "not an integer"),
    (["--budgets", "1e-300"], "must be >= 1e-06"),  # a ZeroDivisionError after the fits
    (["--budgets", "1e308"], "must be <= 100"),
    (["--n-samples", "1000000000000"], "must be <= 100000000"),  # a MemoryError
])
def test_comparison_options_are_checked_when_parsed(option, message, tmp_path, capsys):
    # --budgets 0 raised ZeroDivisionError, --n-samples 0 silently became 6000 users
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--methods", "random", *option, "--output", str(tmp_path)])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_comparison_errors_found_before_any_fit(tmp_path, capsys):
    assert main(["demo", "--methods", "random", "--device", "gpu0", "--output",
                 str(tmp_path)]) == 2
    assert "is not a torch device" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")
    assert main(["benchmark", "--datasets", f"criteo={tmp_path / 'empty.csv'}", "--output",
                 str(tmp_path)]) == 2
    assert "Cannot read" in capsys.readouterr().err
    # the oracle needs ground truth: not "No fit finished within the time limit"
    from sklearn_budget.datasets._public import _CRITEO_FEATURES

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 12)), columns=list(_CRITEO_FEATURES))
    frame["treatment"] = rng.integers(0, 2, 400)
    frame["conversion"], frame["visit"] = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    frame["exposure"] = frame["treatment"]
    frame.to_csv(tmp_path / "criteo.csv", index=False)
    assert main(["benchmark", "--datasets", f"criteo={tmp_path / 'criteo.csv'}", "--methods",
                 "oracle", "--output", str(tmp_path), "--quiet"]) == 0
    assert "the oracle needs the ground truth" in capsys.readouterr().out


def test_more_comparison_errors_are_one_line_before_any_fit(tmp_path, capsys):
    # each was a traceback, some after every fit had run
    import torch

    (tmp_path / "taken").write_text("x")
    cases = [(["--output", str(tmp_path / "taken")], "is a file; give a folder")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda", "--output", str(tmp_path)],
                      "--device 'cuda' but CUDA is not available here"))
    for args, message in cases:
        assert main(["demo", "--methods", "random", "end-to-end", *args]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    if not torch.cuda.is_available():  # no end-to-end model: the device is not needed
        assert main(["demo", "--quick", "--methods", "random", "--device", "cuda",
                     "--output", str(tmp_path / "ok"), "--quiet"]) == 0
        capsys.readouterr()
    for seed in ("-1", str(2**32)):  # numpy's seed range
        with pytest.raises(SystemExit) as exc:
            main(["demo", "--methods", "random", "--seeds", seed, "--output", str(tmp_path)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "--seeds" in err
        assert err.count("\n") == 1 and "see sklearn-budget demo --help" in err  # no usage


def test_allocate_output_that_cannot_be_written_fails_first(saved_model, tmp_path, capsys):
    est, folder, users = saved_model
    model, good = str(folder / "model.joblib"), str(folder / "users.csv")
    (tmp_path / "file").write_text("x")
    assert main(["allocate", "--model", model, "--input", good, "--output",
                 str(tmp_path / "file" / "out.csv")]) == 2
    captured = capsys.readouterr()
    assert "Cannot create the folder of --output" in captured.err
    assert captured.out == ""  # before the allocation
    # a run that fails later leaves no empty folders behind
    assert main(["allocate", "--model", model, "--input", str(tmp_path / "none.csv"),
                 "--output", str(tmp_path / "new" / "sub" / "o.csv")]) == 2
    assert not (tmp_path / "new").exists()


def test_allocate_says_when_there_is_no_id_column(saved_model, tmp_path, capsys):
    est, folder, users = saved_model
    model = str(folder / "model.joblib")
    users.drop(columns=["id"]).to_csv(tmp_path / "no_id.csv", index=False)
    assert main(["allocate", "--model", model, "--input", str(tmp_path / "no_id.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 0
    assert "no 'id' column in the input" in capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "o.csv").columns) == ["treatment"]
    # a name given and missing (misspelt) is an error, not a note: the ids were lost
    assert main(["allocate", "--model", model, "--input", str(tmp_path / "no_id.csv"),
                 "--output", str(tmp_path / "o2.csv"), "--id-column", "userid"]) == 2
    assert "--id-column 'userid': the input has no such column" in capsys.readouterr().err
    assert not (tmp_path / "o2.csv").exists()


def test_allocate_refuses_to_write_over_its_input(saved_model, tmp_path, capsys):
    # the input was replaced by a column of labels, exit 0
    est, folder, users = saved_model
    model = str(folder / "model.joblib")
    users.to_csv(tmp_path / "in.csv", index=False)
    before = (tmp_path / "in.csv").read_bytes()
    (tmp_path / "link.csv").symlink_to(tmp_path / "in.csv")
    for out in ("in.csv", "link.csv", "./in.csv"):
        assert main(["allocate", "--model", model, "--input", str(tmp_path / "in.csv"),
                     "--output", str(tmp_path / out)]) == 2
        assert "is the --input file" in capsys.readouterr().err
    assert (tmp_path / "in.csv").read_bytes() == before


def test_python_dash_m_help():
    proc = subprocess.run([sys.executable, "-m", "sklearn_budget", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for command in ("demo", "benchmark", "allocate"):
        assert command in proc.stdout


def test_comparison_reports_undefined_mt_aucc_as_nan():
    # A model that predicts no profitable treatment has no MT-AUCC (its
    # maximal-spend policy is "all control"); the benchmark row gets NaN and a
    # warning instead of the whole benchmark stopping.
    from sklearn_budget._comparison_scores import _mt_aucc_or_nan

    rng = np.random.default_rng(0)
    n = 400
    t = rng.integers(0, 2, n)
    rev = t * rng.uniform(0, 2, n)
    cost = t * 1.0
    r, c = -np.ones((n, 1)), np.ones((n, 1))
    with pytest.warns(RuntimeWarning, match="MT-AUCC undefined"):
        assert np.isnan(_mt_aucc_or_nan("m", r, c, t, rev, cost, np.array([1])))
    value = _mt_aucc_or_nan("m", rev[:, None] + 0.1, c, t, rev, cost, np.array([1]))
    assert np.isfinite(value)


def test_summarize_says_over_how_many_seeds_a_partial_mean_is():
    # a value undefined (NaN) on 2 of 3 seeds showed as the third seed's value in a row
    # that says "seeds 3"
    res = pd.DataFrame({"dataset": "toy", "seed": [0, 1, 2], "budget_fraction": 0.4,
                        "method": "T", "mt_aucc": [0.9, np.nan, np.nan],
                        "oracle_fraction": [0.5, 0.6, 0.7], "fit_time": 1.0})
    row = summarize(res).iloc[0]
    assert row["mt_aucc"] == "0.900 (1 of 3)" and row["oracle_fraction"] == "0.600 ± 0.100"
    assert row["seeds"] == 3


def test_comparison_inputs_are_checked():
    # budgets=(0.0,) raised ZeroDivisionError; true_revenue without true_cost an IndexError
    with pytest.raises(ValueError, match="`budgets` must be fractions > 0"):
        compare_allocators(_factory(), ["random"], budgets=(0.0,), progress=False)
    d = make_marketing_rct(n_samples=400, random_state=0)
    with pytest.raises(ValueError, match="Give both `true_revenue` and `true_cost`"):
        ComparisonData.from_arrays("toy", d.X, d.treatment, d.revenue, d.cost,
                                   true_revenue=d.true_revenue)


def test_repeated_values_and_a_path_for_synthetic_data_are_refused(tmp_path, capsys):
    # repeats were counted as extra seeds ("seeds 2", "+- 0.000"); the path was ignored
    rows = ["recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,"
            "visit,conversion,spend"] + [
        f"{i},1) $0 - $100,{10 + i},1,0,Urban,0,Web,{arm},{i % 2},0,0"
        for i, arm in enumerate(["No E-Mail", "Mens E-Mail", "Womens E-Mail"] * 4)]
    for name in ("a.csv", "b.csv"):  # two (tiny) Hillstrom files
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    for args in (["demo", "--seeds", "0", "0"], ["demo", "--methods", "random", "random"],
                 ["benchmark", "--datasets", "synthetic", "synthetic"],
                 # one data set under two names, two files under one: they ran as seeds
                 ["benchmark", "--datasets", "synthetic", "synthetic-default"],
                 ["benchmark", "--datasets", f"hillstrom={tmp_path / 'a.csv'}",
                  f"hillstrom={tmp_path / 'b.csv'}"],
                 ["benchmark", "--datasets", "synthetic=/no/such.csv"]):
        assert main([*args, "--output", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("more than once" in err or "drop '=" in err)
    assert not (tmp_path / "o").exists()
