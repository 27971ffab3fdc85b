"""Pictures (matplotlib, an optional extra): the points coloured by component with each component's covariance
ellipses, and an information criterion against the number of components.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: no global state, no display needed.
"""

import numpy as np

# Points drawn at most: a scatter of millions of points costs minutes and shows nothing more.
_MAX_POINTS = 20_000


def _figure(size):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pictures need matplotlib: pip install 'fastgmm[plot]'") from None
    return Figure(figsize=size, layout="constrained")


def _marginal_covariances(model, features):
    """Each component's 2 x 2 covariance of the two ``features``."""
    cov, K = model.covariances_, model.n_components
    i, j = features
    if model.covariance_type == "full":
        return cov[:, [i, j]][:, :, [i, j]]
    if model.covariance_type == "tied":
        return np.repeat(cov[np.ix_([i, j], [i, j])][None], K, axis=0)
    if model.covariance_type == "diag":
        return np.stack([np.diag(c[[i, j]]) for c in cov])
    return np.stack([np.eye(2) * c for c in cov])


def plot_clusters(model, X, path, features=(0, 1), names=None, random_state=0):
    """Scatter of X's two ``features`` coloured by predicted component, with ellipses at 1 and 2 standard
    deviations of each component, saved to ``path``.

    Parameters
    ----------
    model : fitted GaussianMixture
    X : array-like of shape (n_samples, n_features)
    path : str
        Image file; the format follows the suffix (.png, .svg, .pdf).
    features : pair of int
    names : list of str, optional
        Feature names for the axis labels.
    random_state : int
        Seeds the subsample of points drawn when X has more than 20,000 rows.
    """
    from matplotlib.patches import Ellipse

    X = np.asarray(X)
    if X.shape[1] == 1:
        raise ValueError("a scatter plot needs at least 2 features")
    i, j = features
    for f in features:
        if not 0 <= f < X.shape[1]:
            raise ValueError(f"feature {f} out of range: the data have {X.shape[1]} features")
    if len(X) > _MAX_POINTS:
        X = X[np.sort(np.random.RandomState(random_state).choice(len(X), _MAX_POINTS, replace=False))]
    labels = model.predict(X)
    fig = _figure((6.4, 5.2))
    ax = fig.add_subplot()
    colours = [f"C{k % 10}" for k in range(model.n_components)]
    ax.scatter(X[:, i], X[:, j], c=[colours[k] for k in labels], s=4, alpha=0.5, linewidths=0)
    for k, cov in enumerate(_marginal_covariances(model, features)):
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for n_std in (1, 2):
            width, height = 2 * n_std * np.sqrt(np.maximum(values[::-1], 0))
            ax.add_patch(Ellipse(model.means_[k, [i, j]], width, height, angle=angle, fill=False,
                                 edgecolor=colours[k], linewidth=1.5 if n_std == 1 else 0.8))
        ax.plot(*model.means_[k, [i, j]], marker="x", color="black", markersize=6)
    names = names or [f"feature {f}" for f in range(X.shape[1])]
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_title(f"{model.n_components} components, {model.covariance_type} covariances")
    fig.savefig(path, dpi=110)


def plot_selection(results, criterion, path):
    """The criterion of every fit of :func:`fastgmm.select_model` against the number of components, one line per
    covariance type, the best pair circled; saved to ``path``."""
    fig = _figure((6.4, 4.4))
    ax = fig.add_subplot()
    values = np.asarray(results[criterion], dtype=float)
    types = list(dict.fromkeys(results["covariance_type"]))
    for t in types:
        rows = (results["covariance_type"] == t) & np.isfinite(values)
        ax.plot(results["n_components"][rows], values[rows], marker="o", markersize=4, label=t)
    best = int(np.argmin(values))
    ax.plot(results["n_components"][best], values[best], marker="o", markersize=14, fillstyle="none", color="black",
            label=f"best: {results['n_components'][best]}, {results['covariance_type'][best]}")
    ax.set_xlabel("number of components")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.legend()
    fig.savefig(path, dpi=110)
