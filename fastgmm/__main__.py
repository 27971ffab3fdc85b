"""fastgmm's command line (the ``fastgmm`` console script, or ``python -m fastgmm``).

  fastgmm demo [--plot out.png]                           fit a million synthetic points, compare with scikit-learn
  fastgmm fit DATA -k K [-t full] -o MODEL [--bayesian]   fit and save a model (--bayesian: variational, K at most)
  fastgmm fit DATA [DATA ...] --stream -k K -o MODEL      files or directories read once, in order, by partial_fit
  fastgmm predict MODEL DATA [-o LABELS] [--proba]        labels (or probabilities) of the rows of DATA
  fastgmm score MODEL DATA                                mean log-likelihood, BIC and AIC of DATA
  fastgmm select DATA -k 1-20 [-t all] [-o MODEL] [--plot out.png]
                                                          fit every pair, print the table, keep the best by BIC
  fastgmm plot MODEL DATA -o out.png [--features a b]     points coloured by component, covariance ellipses
  fastgmm warmup [--features 1-17] [--dtypes float64,float32] [--layouts c,any]
                                                          compile the Numba kernels ahead of time (images, CI)
  fastgmm info                                            versions, backends, threads, Numba's cache

DATA is .npy, .npz, .csv or .parquet (with pyarrow); --columns picks columns by name or position.
"""

import argparse
import sys
import time
import warnings


def _synthetic(n_samples, n_features, n_components, seed):
    """Well-separated Gaussian blobs with random covariances."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels]), labels


def _progress(args):
    return False if args.quiet else "auto"


def _read(args):
    from ._files import read_data

    columns = args.columns.split(",") if args.columns else None
    return read_data(args.data, columns=columns, key=args.key)


def _components(text):
    """'3', '1-20' or '2,4,8' as a list of positive ints."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            values = list(range(first, last + 1))
        else:
            values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, N1-N2 or N1,N2,...; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every number must be >= 1; got {text!r}")
    return values


def _model_settings(args, X):
    from ._backends import command_backend

    return dict(
        backend=command_backend(args.backend, X.size), max_iter=args.max_iter, n_init=args.n_init, tol=args.tol,
        reg_covar=args.reg_covar, random_state=args.random_state, init_params=args.init_params, n_jobs=args.n_jobs,
    )


def demo(args):
    """Fit a synthetic data set with fastgmm and, where installed, scikit-learn from the same seed."""
    import numpy as np

    from . import GaussianMixture
    from ._backends import get_backend, warm_up

    X, _ = _synthetic(args.n_samples, args.n_features, args.n_components, args.seed)
    print(
        f"data: {X.shape[0]:,} points, {X.shape[1]} features, drawn from {args.n_components} Gaussian blobs "
        f"({X.nbytes / 2**20:.0f} MiB float64)"
    )
    settings = dict(n_components=args.n_components, random_state=args.seed, max_iter=args.max_iter)
    backend = get_backend(args.backend).NAME

    # The compiled kernels are built on first use (and cached on disk): time that apart from the fit.
    seconds = warm_up(GaussianMixture(backend=backend, **settings), X)
    print(f"fastgmm ({backend} backend) first calls, which compile the kernels or load them from the cache: "
          f"{seconds:.2f} s")

    start = time.perf_counter()
    ours = GaussianMixture(backend=backend, progress=_progress(args), **settings).fit(X)
    elapsed = time.perf_counter() - start
    print(
        f"fastgmm:      {elapsed:8.2f} s  ({ours.n_iter_} iterations, converged={ours.converged_}, "
        f"lower bound {ours.lower_bound_:.6f})"
    )
    if args.plot:
        from ._plot import plot_clusters

        plot_clusters(ours, X, args.plot)
        print(f"picture of the fit: {args.plot}")
    try:
        from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
    except ImportError:
        return 0
    if args.no_sklearn:
        return 0
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SklearnGaussianMixture(**settings).fit(X)
    sk_elapsed = time.perf_counter() - start
    print(
        f"scikit-learn: {sk_elapsed:8.2f} s  ({theirs.n_iter_} iterations, converged={theirs.converged_}, "
        f"lower bound {theirs.lower_bound_:.6f})"
    )
    agree = np.mean(ours.predict(X) == theirs.predict(X))
    print(
        f"fastgmm was {sk_elapsed / elapsed:.1f}x faster; same labels for {100 * agree:.2f}% of the points; "
        f"lower bounds differ by {abs(ours.lower_bound_ - theirs.lower_bound_):.1e}"
    )
    print("\nNext: `fastgmm fit DATA -k K -o model.npz` on your own .npy/.csv/.parquet file, `fastgmm select DATA -k "
          "1-10` to choose K and the covariance type by BIC, `fastgmm --help` for the rest.")
    return 0


def fit(args):
    from . import BayesianGaussianMixture, GaussianMixture

    if args.stream:
        return _fit_stream(args)
    if args.more_data:
        raise SystemExit("fastgmm fit: several data files need --stream (or join them into one file)")
    X, names = _read(args)
    settings = dict(covariance_type=args.covariance_type, progress=_progress(args), **_model_settings(args, X))
    if args.bayesian and args.missing != "error":
        raise SystemExit("fastgmm fit: --missing marginalize fits a GaussianMixture; --bayesian has no missing values")
    if args.bayesian:
        model = BayesianGaussianMixture(n_components=args.k, weight_concentration_prior_type=args.weight_prior,
                                        weight_concentration_prior=args.weight_concentration_prior, **settings)
    else:
        model = GaussianMixture(args.k, missing_values=args.missing, **settings)
    start = time.perf_counter()
    model.fit(X)
    elapsed = time.perf_counter() - start
    model.save(args.output)
    if args.bayesian:
        used = int((model.weights_ >= 1e-2).sum())
        summary = f"{used} of the {args.k} components have a weight of 1% or more"
    else:
        summary = f"BIC {model.bic(X):.3f}"
    print(f"fitted {args.k} components ({args.covariance_type}{', variational' if args.bayesian else ''}) to "
          f"{X.shape[0]:,} rows x {X.shape[1]} columns in {elapsed:.2f} s: {model.n_iter_} iterations, "
          f"converged={model.converged_}, lower bound {model.lower_bound_:.6f}, {summary}")
    print(f"model saved to {args.output}")
    return 0


def _fit_stream(args):
    """``fastgmm fit --stream``: every file once, in order, one ``partial_fit`` each (online EM)."""
    from . import GaussianMixture
    from ._files import read_data, stream_files

    if args.bayesian:
        raise SystemExit("fastgmm fit: --stream fits a GaussianMixture by online EM; --bayesian has no stream")
    files = stream_files([args.data, *args.more_data])
    columns = args.columns.split(",") if args.columns else None
    model = bar = None
    rows = 0
    start = time.perf_counter()
    if _progress(args) == "auto" and sys.stderr is not None and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="stream", unit="file", leave=False, file=sys.stderr)
    for path in files:
        X, _ = read_data(path, columns=columns, key=args.key)
        if model is None:
            settings = {key: value for key, value in _model_settings(args, X).items()
                        if key not in ("max_iter", "n_init", "tol")}
            model = GaussianMixture(args.k, covariance_type=args.covariance_type, step_size=args.step_size,
                                    missing_values=args.missing, **settings)
        model.partial_fit(X)
        rows += X.shape[0]
        if bar is not None:
            bar.set_postfix(lower_bound=f"{model.lower_bound_:.6g}", refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    model.save(args.output)
    print(f"streamed {len(files)} file(s), {rows:,} rows x {model.n_features_in_} columns, through {args.k} components "
          f"({args.covariance_type}) in {elapsed:.2f} s: last batch's mean log-likelihood {model.lower_bound_:.6f}")
    print(f"model saved to {args.output}")
    return 0


def _load(path):
    from . import load

    return load(path)


def predict(args):
    from ._files import write_array

    model = _load(args.model)
    X, _ = _read(args)
    if args.proba:
        result = model.predict_proba(X)
        header = [f"component_{k}" for k in range(model.n_components)]
    else:
        result, header = model.predict(X), ["label"]
    if args.output:
        write_array(args.output, result, header)
        print(f"{'probabilities' if args.proba else 'labels'} of {len(result):,} rows written to {args.output}")
    else:
        import numpy as np

        np.savetxt(sys.stdout, result.reshape(len(result), -1), fmt="%d" if not args.proba else "%.6g",
                   delimiter=",")
    return 0


def score(args):
    model = _load(args.model)
    X, _ = _read(args)
    print(f"rows: {X.shape[0]}\nmean log-likelihood: {model.score(X):.6f}")
    if hasattr(model, "bic"):  # a variational mixture has no maximum-likelihood criterion
        print(f"BIC: {model.bic(X):.3f}\nAIC: {model.aic(X):.3f}")
    return 0


def select(args):
    from . import select_model
    from ._selection import format_results

    X, _ = _read(args)
    types = "all" if args.covariance_type == "all" else args.covariance_type.split(",")
    start = time.perf_counter()
    best, results = select_model(X, args.k, types, args.criterion, **_model_settings(args, X))
    elapsed = time.perf_counter() - start
    print(format_results(results, args.criterion))
    print(f"best by {args.criterion.upper()}: {best.n_components} components, {best.covariance_type} covariances "
          f"({len(results[args.criterion])} fits in {elapsed:.2f} s)")
    if args.output:
        best.save(args.output)
        print(f"best model saved to {args.output}")
    if args.plot:
        from ._plot import plot_selection

        plot_selection(results, args.criterion, args.plot)
        print(f"picture of the criterion: {args.plot}")
    return 0


def plot(args):
    from ._plot import plot_clusters

    model = _load(args.model)
    X, names = _read(args)
    features = [0, 1]
    if args.features:
        from ._files import column_indices

        features = column_indices(names, args.features, args.data)
    plot_clusters(model, X, args.output, features=tuple(features), names=names)
    print(f"picture written to {args.output}")
    return 0


def info(args):
    from . import show_versions

    show_versions()
    return 0


def warmup(args):
    """Compile the common Numba kernels into Numba's on-disk cache."""
    from ._warmup import warmup as compile_kernels

    start = time.perf_counter()
    print(f"compiling Numba's kernels for {len(args.features)} numbers of features x {len(args.dtypes)} dtypes x "
          f"{len(args.layouts)} layouts")
    compile_kernels(args.features, args.dtypes, n_jobs=args.jobs, verbose=True, layouts=args.layouts)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastgmm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data(p, model=False):
        if model:
            p.add_argument("model", help="model file written by fit or select")
        p.add_argument("data", help="data file: .npy, .npz, .csv or .parquet")
        p.add_argument("--columns", help="comma-separated columns to use, by name or position (default: all)")
        p.add_argument("--key", help="the array to use in an .npz file")

    def settings(p):
        p.add_argument("--backend", default="auto", choices=["auto", "numba", "cython", "numpy"],
                       help="kernels (default auto: Cython below 10 million values, where Numba's start-up cost "
                            "does not pay back, else Numba)")
        p.add_argument("--max-iter", type=int, default=100)
        p.add_argument("--n-init", type=int, default=1)
        p.add_argument("--tol", type=float, default=1e-3)
        p.add_argument("--reg-covar", type=float, default=1e-6)
        p.add_argument("--init-params", default="kmeans", choices=["kmeans", "k-means++", "random",
                                                                   "random_from_data", "ward"])
        p.add_argument("--random-state", type=int, default=0, help="seed of the initialisation (default 0)")
        p.add_argument("--n-jobs", type=int, default=None, help="threads (default: all cores)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = commands.add_parser("demo", help="fit a synthetic data set of a million points and compare with "
                                         "scikit-learn")
    p.add_argument("--n-samples", type=int, default=1_000_000)
    p.add_argument("--n-features", type=int, default=8)
    p.add_argument("--n-components", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "cython", "numpy"])
    p.add_argument("--plot", metavar="PNG", help="also draw the fit to this image file")
    p.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn comparison")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=demo)

    p = commands.add_parser("fit", help="fit a model to a data file and save it")
    data(p)
    p.add_argument("-k", "--n-components", dest="k", type=int, required=True)
    p.add_argument("-t", "--covariance-type", default="full", choices=["full", "tied", "diag", "spherical"])
    p.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    p.add_argument("more_data", nargs="*", metavar="DATA", help="with --stream: more files or directories")
    p.add_argument("--stream", action="store_true",
                   help="read each file (a directory: its data files by name) once, in order, one partial_fit step "
                        "each: online EM for data that do not fit in memory or arrive in pieces")
    p.add_argument("--step-size", type=float, default=None,
                   help="with --stream: a constant step for a drifting stream (default: decaying steps)")
    p.add_argument("--bayesian", action="store_true",
                   help="a variational Bayesian mixture (BayesianGaussianMixture): K is an upper bound, surplus "
                        "components get weights near zero")
    p.add_argument("--weight-prior", default="dirichlet_process", choices=["dirichlet_process",
                                                                           "dirichlet_distribution"],
                   help="with --bayesian: the prior on the weights (default dirichlet_process)")
    p.add_argument("--weight-concentration-prior", type=float, default=None,
                   help="with --bayesian: its concentration (default 1 / K); larger keeps more components")
    p.add_argument("--missing", default="error", choices=["error", "marginalize"],
                   help="NaN entries (empty CSV cells, Parquet nulls): an error (default), or missing values that EM "
                        "marginalises (missing_values='marginalize'); the saved model then predicts rows with holes")
    settings(p)
    p.set_defaults(func=fit)

    p = commands.add_parser("predict", help="component labels (or probabilities) of the rows of a data file")
    data(p, model=True)
    p.add_argument("-o", "--output", help=".npy or .csv file (default: print one row per line)")
    p.add_argument("--proba", action="store_true", help="probabilities of every component instead of labels")
    p.set_defaults(func=predict)

    p = commands.add_parser("score", help="mean log-likelihood, BIC and AIC of a data file under a model")
    data(p, model=True)
    p.set_defaults(func=score)

    p = commands.add_parser("select", help="choose the number of components and covariance type by BIC or AIC")
    data(p)
    p.add_argument("-k", "--n-components", dest="k", type=_components, default=list(range(1, 11)),
                   help="K, K1-K2 or K1,K2,... (default 1-10)")
    p.add_argument("-t", "--covariance-type", default="all",
                   help="'all' (default) or a comma-separated list of full, tied, diag, spherical")
    p.add_argument("--criterion", default="bic", choices=["bic", "aic"])
    p.add_argument("-o", "--output", help="save the best model to this file")
    p.add_argument("--plot", metavar="PNG", help="draw the criterion against K to this image file")
    settings(p)
    p.set_defaults(func=select)

    p = commands.add_parser("plot", help="draw the points coloured by component with the covariance ellipses")
    data(p, model=True)
    p.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf)")
    p.add_argument("--features", nargs=2, metavar=("X", "Y"), help="the two features to draw (default: the first two)")
    p.set_defaults(func=plot)

    p = commands.add_parser("warmup", help="compile the Numba kernels ahead of time (for container images)")
    p.add_argument("--features", type=_components, default=list(range(1, 18)),
                   help="numbers of features: N, N1-N2 or N1,N2,... (default 1-17: each exact kernel up to 16, "
                        "and the kernels for any larger number)")
    p.add_argument("--dtypes", type=lambda text: text.split(","), default=["float64", "float32"],
                   help="comma-separated (default float64,float32)")
    p.add_argument("--layouts", type=lambda text: text.split(","), default=["c"],
                   help="memory layouts of the data: c (C-ordered, the default), any (every other: Fortran-ordered "
                        "as from pandas, strided, read-only), or c,any")
    p.add_argument("--jobs", type=int, default=None, help="processes compiling at once (default: one per core)")
    p.set_defaults(func=warmup)

    p = commands.add_parser("info", help="versions, usable backends and threads")
    p.set_defaults(func=info)
    return parser


def main(argv=None):
    """Entry point of ``fastgmm`` and ``python -m fastgmm``."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as error:
        # Bad files, columns and parameters are the user's to fix: one line, no traceback.
        parser.exit(1, f"fastgmm {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
