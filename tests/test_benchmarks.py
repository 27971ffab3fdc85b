"""The asv suite (asv_benchmarks/) still runs: ``asv check`` and one quick-profile run against the installed
fastgmm with this interpreter, so that a benchmark broken by a change fails the tests rather than a later
dashboard run; and the dashboard published from that run (``asv_benchmarks/publish.py``) renders its graphs in
headless Chromium with the network off for anything but 127.0.0.1."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "asv_benchmarks"

pytestmark = pytest.mark.skipif(not (BENCHMARKS / "asv.conf.json").exists(), reason="no asv_benchmarks/ here")


def _asv(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "asv", *args], cwd=BENCHMARKS, env=env, capture_output=True, text=True, timeout=900
    )


def _config_text(path):
    return "\n".join(line for line in Path(path).read_text().splitlines() if not line.lstrip().startswith("//"))


@pytest.fixture(scope="module")
def asv_env(tmp_path_factory):
    pytest.importorskip("asv")
    home = tmp_path_factory.mktemp("asv-home")  # asv keeps its machine description in ~/.asv-machine.json
    env = dict(os.environ, HOME=str(home), FASTGMM_ASV_PROFILE="quick",
               FASTGMM_ASV_DATA=str(tmp_path_factory.mktemp("asv-data")))
    env.pop("FASTGMM_BACKEND", None)
    machine = _asv("machine", "--yes", "--machine", "ci", env=env)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    # The suite's configuration with results and site in a temporary folder, not in the checkout.
    config = json.loads(_config_text(BENCHMARKS / "asv.conf.json"))
    site = tmp_path_factory.mktemp("asv-site")
    config.update(repo=str(BENCHMARKS.parent), benchmark_dir=str(BENCHMARKS / "benchmarks"),
                  results_dir=str(site / "results"), html_dir=str(site / "html"), env_dir=str(site / "env"))
    (site / "asv.conf.json").write_text(json.dumps(config))
    env["FASTGMM_TEST_ASV_CONFIG"] = str(site / "asv.conf.json")
    return env


@pytest.fixture(scope="module")
def quick_run(asv_env):
    """One quick-profile run of the whole suite, its results stored for this checkout's commit."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCHMARKS, capture_output=True, text=True)
    if commit.returncode != 0:
        pytest.skip("not a git checkout: asv stores results by commit")
    return _asv("run", "--python=same", "--quick", "--show-stderr", "--machine", "ci", "--config",
                asv_env["FASTGMM_TEST_ASV_CONFIG"], f"--set-commit-hash={commit.stdout.strip()}", env=asv_env)


def test_asv_check_finds_no_problems(asv_env):
    result = _asv("check", "--python=same", env=asv_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout


def test_quick_benchmark_run_succeeds(quick_run):
    result = quick_run
    # asv run exits 2 when a benchmark fails.
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    for name in ("time_em_iteration", "time_fit", "peakmem_fit", "track_log_likelihood", "time_predict_proba",
                 "track_speedup", "timeraw_first_fit", "time_bayesian_fit", "time_partial_fit"):
        assert f"{name}" in result.stdout, name
    assert "failed" not in result.stdout


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_onedal_peer_runs_the_same_iterations_as_sklearn(covariance_type):
    """The benchmarks' oneDAL wrapper fits from the given start for exactly max_iter iterations: its means follow
    scikit-learn's from the same start (oneDAL regularises differently, hence not to the last digits)."""
    pytest.importorskip("daal4py")
    from sklearn.mixture import GaussianMixture

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from benchmarks.common import OneDALMixture
        from benchmarks.datasets import overlapping_start
    finally:
        sys.path.remove(str(BENCHMARKS))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3))
    X[:10_000] += 1.5
    init = overlapping_start(X, covariance_type, 6)
    for max_iter in (1, 3, 10):
        peer = OneDALMixture(6, covariance_type=covariance_type, max_iter=max_iter, **init).fit(X)
        expected = GaussianMixture(6, covariance_type=covariance_type, max_iter=max_iter, tol=0, **init).fit(X)
        assert peer.n_iter_ == max_iter
        np.testing.assert_allclose(peer.means_, expected.means_, atol=1e-4)
        np.testing.assert_allclose(peer.weights_, expected.weights_, atol=1e-5)


# ------------------------------------------------------------------------------------------------- the dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run): there the dashboard tests fail rather than skip without it.
NO_CHROMIUM = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                 reason="no Chromium (Debian: apt-get install chromium; .ci/run installs it)")
# As the machine's own check of Chromium: no first-run, sync or background traffic to Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The test saves its screenshot in its temporary folder, or where this names (README's docs/dashboard.png).
SCREENSHOT_TO = os.environ.get("FASTGMM_DASHBOARD_SCREENSHOT")


@pytest.fixture(scope="module")
def dashboard(asv_env, quick_run):
    """The site ``publish.py`` makes of the quick run, served on 127.0.0.1."""
    assert quick_run.returncode == 0, quick_run.stdout[-3000:] + quick_run.stderr[-3000:]
    config = asv_env["FASTGMM_TEST_ASV_CONFIG"]
    published = subprocess.run([sys.executable, str(BENCHMARKS / "publish.py"), "--config", config], env=asv_env,
                               capture_output=True, text=True, timeout=600)
    assert published.returncode == 0, published.stdout + published.stderr
    html = Path(json.loads(Path(config).read_text())["html_dir"])
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield html, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _open(url, actions, screenshot=None):
    """Load ``url`` in headless Chromium with every request to another host than 127.0.0.1 aborted; run
    ``actions(page)``. Returns the console errors, the failed requests and the blocked ones."""
    from playwright.sync_api import sync_playwright

    errors, failed, blocked = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})

            def route(request_route):
                if request_route.request.url.startswith("http://127.0.0.1:"):
                    request_route.continue_()
                else:
                    blocked.append(request_route.request.url)
                    request_route.abort()

            page.route("**/*", route)
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
            page.goto(url)
            actions(page)
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return errors, failed, blocked


def _graph_of_em_iterations(page):
    """The grid of every benchmark's thumbnail plot, then the EM iteration's graph with scikit-learn's series
    beside fastgmm's backends (by implementation, log scale)."""
    # The thumbnails are drawn one after another as their data arrive: wait for ten, not for the first (counting
    # right after the first found 8 on a loaded machine).
    page.wait_for_function(
        "document.querySelectorAll('#summarygrid-display .benchmark-plot canvas.flot-base').length >= 10",
        timeout=60_000,
    )
    assert page.locator("#summarygrid-display .benchmark-container").count() >= 10
    assert page.locator("#summarygrid-display .benchmark-plot canvas.flot-base").count() >= 10
    page.goto(page.url.split("#")[0] + "#mixture.EMIteration.time_em_iteration")
    page.wait_for_selector("#main-graph canvas.flot-base", timeout=60_000)
    page.locator("#graphdisplay-navigation").get_by_text("sklearn", exact=True).click()
    page.locator("#graphdisplay-navigation").get_by_text("log scale", exact=True).click()
    page.locator("#graphdisplay-navigation").get_by_text("implementation", exact=True).first.click()
    page.wait_for_selector("#main-graph canvas.flot-base", timeout=60_000)
    # The legend and the tick labels are drawn after the canvas: wait for the three series' labels (a fixed second
    # is a race on a loaded machine), and let the assertion say what was drawn if they never come.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "['numba', 'cython', 'sklearn'].every(name => [...document.querySelectorAll("
            "'#main-graph .flot-x-axis .flot-tick-label')].some(label => label.innerText === name))",
            timeout=60_000,
        )
    except PlaywrightTimeout:
        pass
    ticks = page.locator("#main-graph .flot-x-axis .flot-tick-label").all_inner_texts()
    assert {"numba", "cython", "sklearn"} <= set(ticks), ticks


@NO_CHROMIUM
def test_published_dashboard_renders_offline(dashboard, tmp_path):
    html, url = dashboard
    index = (html / "index.html").read_text()
    assert "cdn" not in index.lower() and "code.jquery.com" not in index
    screenshot = Path(SCREENSHOT_TO) if SCREENSHOT_TO else tmp_path / "dashboard.png"
    errors, failed, blocked = _open(url + "/index.html", _graph_of_em_iterations, screenshot=screenshot)
    assert errors == [] and failed == [] and blocked == [], (errors, failed, blocked)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000


@NO_CHROMIUM
def test_the_dashboard_test_fails_without_a_vendored_script(dashboard, tmp_path):
    """The check above sees a missing script: the same site with one vendored file removed fails it."""
    html, _ = dashboard
    broken = tmp_path / "html"
    shutil.copytree(html, broken)
    (broken / "vendor" / "flot-0.8.3-jquery.flot.js").unlink()
    handler = functools.partial(_QuietHandler, directory=str(broken))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        def actions(page):
            page.wait_for_timeout(3000)

        errors, failed, _ = _open(f"http://127.0.0.1:{server.server_address[1]}/index.html", actions)
    finally:
        server.shutdown()
    assert any("flot" in address for address in failed) and errors
