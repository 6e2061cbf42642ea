"""Browser tests of the Paddock dashboard (issue 17), run by Tests/browser/run.sh.

A real master and a real agent run on loopback; Debian's chromium (/usr/bin/chromium) is driven
by Playwright for Python (pinned in scripts/setup-debian.sh). Every wait is for an event, bounded
(30 s, more where the agent's 10 s sampling step decides); none is a fixed sleep.

Environment: PADDOCK_URL, PADDOCK_ADMIN_TOKEN_FILE, PADDOCK_ARTIFACTS (screenshots folder).
"""

import datetime
import json
import os
import ssl
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid

from playwright.sync_api import Page, expect, sync_playwright

URL = os.environ["PADDOCK_URL"]
with open(os.environ["PADDOCK_ADMIN_TOKEN_FILE"]) as token_file:
    TOKEN = token_file.read().strip()
ARTIFACTS = os.environ.get("PADDOCK_ARTIFACTS", "Tests/browser/artifacts")
# Through the TLS frontend (run.sh --frontend): the tests' own calls trust the test CA, and the
# browser accepts the test certificate.
CA_FILE = os.environ.get("PADDOCK_CA_FILE")
TLS = ssl.create_default_context(cafile=CA_FILE) if CA_FILE else None
CONTEXT = {"ignore_https_errors": True} if URL.startswith("https://") else {}
BOUND_MS = 30_000
expect.set_options(timeout=BOUND_MS)


# ------------------------------------------------------------------------------------------------
# The public API, for setting the scene (what a script or the CLI would do).

def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token or TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=TLS) as response:
        text = response.read()
        return json.loads(text) if text else None


def submit(name, tasks, **extra):
    return call("POST", "/v1/jobs", {"name": name, "tasks": tasks, **extra})


def wait_until(what, check, bound=BOUND_MS / 1000, every=0.1):
    """Polls `check` (an event on the host, outside the page) until true, at most `bound` seconds."""
    deadline = time.monotonic() + bound
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {bound:.0f} s waiting for {what}")
        time.sleep(every)


def pids_of(marker):
    result = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def tree_of(pids):
    """The processes `pids` and all their descendants (from /proc/PID/task/*/children)."""
    tree, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        tree.add(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except OSError:
            pass
    return tree


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def shot(page: Page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=False)


def sign_in(page: Page, token=TOKEN):
    page.goto(URL + "/")
    page.fill("#token", token)
    page.click("#signin button[type=submit]")


def no_reload_marker(page: Page):
    """A value on `window` that a reload would wipe: checked at the end of a live-update test."""
    page.evaluate("window.__paddockNoReload = 'still here'")


def expect_not_reloaded(page: Page):
    assert page.evaluate("window.__paddockNoReload") == "still here", "the page was reloaded"


# ------------------------------------------------------------------------------------------------
# The tests. They share one master and agent, and run in this order.

def test_first_page_load_time(browser, results):
    """Navigation timing of a first visit (a new context: empty cache), five times; the median is reported."""
    loads = []
    for attempt in range(5):
        context = browser.new_context(**CONTEXT, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(URL + "/")
        expect(page.locator("#token")).to_be_visible()
        page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        timing = page.evaluate("""() => {
            const n = performance.getEntriesByType('navigation')[0];
            return { load: n.loadEventEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,
                     response: n.responseEnd - n.startTime };
        }""")
        loads.append(timing["load"])
        print(f"    first load {attempt + 1}: load event at {timing['load']:.1f} ms, DOMContentLoaded at "
              f"{timing['dcl']:.1f} ms, page response at {timing['response']:.1f} ms")
        if attempt < 4:
            context.close()
    loads.sort()
    results["first_load_ms"] = loads[2]
    results["first_load_range"] = (loads[0], loads[-1])
    assert loads[2] < 3000, f"first load took {loads[2]:.0f} ms (median of 5)"
    # A second visit revalidates with the ETag (304) or takes the versioned files from the cache.
    statuses = []
    page.on("response", lambda response: statuses.append((response.url, response.status)))
    page.reload()
    expect(page.locator("#token")).to_be_visible()
    page_status = [status for url, status in statuses if url.rstrip("/") == URL]
    assert page_status and page_status[0] in (200, 304), statuses
    shot(page, "signin")
    context.close()


def test_wrong_token_is_refused(browser, results):
    context = browser.new_context(**CONTEXT, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, "not-the-token")
    expect(page.locator("#signin-message")).to_contain_text("Wrong token")
    expect(page.locator("#signin-message")).to_have_class("error")
    assert "not-the-token" not in page.url
    assert page.evaluate("sessionStorage.getItem('paddock.token')") is None
    expect(page.locator("#nav")).to_be_hidden()
    shot(page, "wrong-token")
    context.close()


def test_sign_in_shows_the_farm(page: Page, results):
    sign_in(page)
    expect(page.locator("#page-title")).to_have_text("Farm overview")
    expect(page.locator("#agents-online")).to_contain_text("1 online")
    assert TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('paddock.token')") == TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert TOKEN not in page.content(), "the token is never written into the page"
    expect(page.locator("#slots")).to_contain_text("/ 4")


def test_a_submitted_job_appears_and_progresses(page: Page, results):
    page.goto(URL + "/#/jobs")
    expect(page.locator("#page-title")).to_have_text("Jobs")
    no_reload_marker(page)
    steps = " ".join(f"0.{i}" for i in range(1, 10))
    job = submit("browser-progress", [{"name": "steps", "command": [
        "sh", "-c", f"for p in {steps}; do echo step $p; echo PROGRESS $p; sleep 0.4; done"]}])
    row = page.locator(f"tr[data-job='{job['id']}']")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "running")
    # Progress moves on the page while the task runs (no reload), then the job succeeds.
    expect(row.locator("[role=progressbar]")).not_to_have_attribute("aria-valuenow", "0")
    expect(row).to_have_attribute("data-state", "succeeded")
    expect(row.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    expect_not_reloaded(page)
    results["progress_job"] = job["id"]


def test_a_running_tasks_log_follows(page: Page, results):
    marker = f"paddock-browser-{uuid.uuid4().hex[:12]}"
    job = submit("browser-log-and-cancel", [{"name": "talker", "command": [
        "sh", "-c", f"i=0; while [ $i -lt 1000 ]; do echo \"line $i {marker}\"; i=$((i+1)); sleep 0.25; done"]}])
    task = job["task_ids"][0]
    results["marker"], results["cancel_job"], results["cancel_task"] = marker, job["id"], task
    page.goto(URL + f"/#/tasks/{task}")
    no_reload_marker(page)
    log = page.locator("#log")
    expect(log).to_contain_text(f"line 2 {marker}")
    first = page.evaluate("document.querySelector('#log').textContent.split('\\n').length")
    # New lines arrive while we watch: ten more than when we first looked.
    page.wait_for_function(
        "n => document.querySelector('#log').textContent.split('\\n').length >= n + 10", arg=first, timeout=BOUND_MS)
    expect(page.locator("#log-state")).to_have_text("(following)")
    expect_not_reloaded(page)
    shot(page, "task")
    # The whole log, downloaded (the token goes in a header, so the page fetches it and saves it).
    with page.expect_download(timeout=BOUND_MS) as download:
        page.get_by_role("button", name="Download log").click()
    saved = download.value
    assert saved.suggested_filename == f"{task}-run1.log", saved.suggested_filename
    with open(saved.path()) as f:
        text = f.read()
    assert text.startswith(f"line 0 {marker}\n") and f"line 5 {marker}" in text, text[:200]


def test_a_page_waits_for_the_farm_to_move(page: Page, results):
    """Live without a timer: the page holds one long-poll on the change feed and refreshes when it answers."""
    held = lambda request: "/v1/changes?" in request.url and "after=" in request.url
    with page.expect_request(held, timeout=BOUND_MS):
        page.goto(URL + "/#/jobs")
        expect(page.locator("#page-title")).to_have_text("Jobs")
    no_reload_marker(page)
    job = submit("browser-feed", [{"name": "quick", "command": ["true"]}])
    row = page.locator(f"tr[data-job='{job['id']}']")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "succeeded")
    expect_not_reloaded(page)


def test_a_tasks_status_and_parameters_show(page: Page, results):
    """What a running task last said (`openjd_status:`) and its parameter values, on its page."""
    job = submit("browser-status", [{"name": "Render[0] Frame=7", "parameters": {"Frame": "7", "Layer": "beauty"},
        "command": ["sh", "-c", "echo 'openjd_status: Rendering frame 7 of 10'; sleep 60"]}])
    task = job["task_ids"][0]
    try:
        page.goto(URL + f"/#/tasks/{task}")
        expect(page.locator("#task-status")).to_have_text("Rendering frame 7 of 10")
        expect(page.locator("#task-parameters")).to_have_text("Frame=7 Layer=beauty")
        shot(page, "task-status")
    finally:
        call("POST", f"/v1/jobs/{job['id']}/cancel")


def test_cancel_a_job_from_the_page(page: Page, results):
    marker, job, task = results["marker"], results["cancel_job"], results["cancel_task"]
    pids = wait_until("the task's process on the host", lambda: pids_of(marker))
    # The task's process tree: the shell and the sleep it runs at the moment.
    tree = wait_until("the shell's child", lambda: (lambda found: found if len(found) > len(pids) else None)(tree_of(pids)))
    page.goto(URL + f"/#/jobs/{job}")
    expect(page.locator(f"tr[data-task='{task}']")).to_have_attribute("data-state", "running")
    shot(page, "job-running")
    page.get_by_role("button", name="Cancel job").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Cancel {job}?")
    # Escape first: nothing happens.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert pids_of(marker), "dismissing the dialog must not cancel"
    page.get_by_role("button", name="Cancel job").click()
    clicked = time.monotonic()
    dialog.get_by_role("button", name="Cancel the job").click()
    expect(page.locator(f"tr[data-task='{task}']")).to_have_attribute("data-state", "cancelled")
    shown = time.monotonic() - clicked
    results["cancel_shown_s"] = shown
    print(f"    the cancellation showed on the page {shown * 1000:.0f} ms after the confirm click")
    expect(page.locator("#page-title")).to_contain_text("cancelled")
    wait_until(f"the process tree {sorted(tree)} to be gone", lambda: not pids_of(marker) and not any(map(alive, tree)))
    print(f"    the cancelled task's process tree {sorted(tree)} is gone")


def test_dependency_graph_is_drawn(page: Page, results):
    job = submit("browser-dag", [
        {"name": "fetch", "command": ["true"]},
        {"name": "left", "command": ["true"], "depends_on": ["fetch"]},
        {"name": "right", "command": ["true"], "depends_on": ["fetch"]},
        {"name": "join", "command": ["true"], "depends_on": ["left", "right"]},
    ])
    page.goto(URL + f"/#/jobs/{job['id']}")
    dag = page.locator("svg#dag")
    expect(dag).to_be_visible()
    expect(dag.locator("a[data-task]")).to_have_count(4)
    expect(dag.locator("path.edge")).to_have_count(4)
    expect(page.locator("#page-title")).to_contain_text("succeeded")
    expect(dag.locator("a.s-succeeded")).to_have_count(4)
    shot(page, "job")


def test_an_earlier_attempts_log(page: Page, results):
    flag = f"/tmp/paddock-browser-{uuid.uuid4().hex[:12]}"
    try:
        job = submit("browser-retry", [{"name": "flaky", "max_attempts": 2, "command": [
            "sh", "-c", f"if [ -e {flag} ]; then echo second run; else touch {flag}; echo first run; exit 3; fi"]}])
        task = job["task_ids"][0]
        page.goto(URL + f"/#/tasks/{task}")
        expect(page.locator("#page-title")).to_contain_text("succeeded")
        expect(page.locator("#log")).to_have_text("second run\n")
        expect(page.locator("#attempt")).to_be_visible()
        page.select_option("#attempt", "1")
        expect(page.locator("#log")).to_have_text("first run\n")
        expect(page.locator("#log-state")).to_contain_text("run 1 of 2")
        expect(page.locator("#history")).to_contain_text("retry_after_failure")
    finally:
        if os.path.exists(flag):
            os.remove(flag)


def test_agent_cpu_graph_gains_points(page: Page, results):
    agents = call("GET", "/v1/agents")["items"]
    agent = agents[0]["id"]
    page.goto(URL + "/#/agents")
    expect(page.locator(f"tr[data-agent='{agent}']")).to_have_attribute("data-state", "online")
    shot(page, "agents")
    page.goto(URL + f"/#/agents/{agent}")
    chart = page.locator("svg#cpu-chart")
    expect(chart).to_be_visible()
    before = int(chart.get_attribute("data-points"))
    # An idle agent reports its host when that moved, or every 60 s (the master keeps a sample
    # every 10 s at most): wait for the next one, without reloading.
    no_reload_marker(page)
    page.wait_for_function(
        "n => Number(document.querySelector('#cpu-chart')?.dataset.points) > n", arg=before, timeout=100_000)
    after = int(page.locator("svg#cpu-chart").get_attribute("data-points"))
    expect_not_reloaded(page)
    print(f"    CPU graph: {before} → {after} points")
    shot(page, "agent")


def test_overview_and_jobs_screens(page: Page, results):
    page.goto(URL + "/#/")
    expect(page.locator("#task-states li[data-state='cancelled'] b")).to_have_text("1")
    shot(page, "overview")
    page.goto(URL + "/#/jobs")
    expect(page.locator("#jobs tbody tr")).to_have_count(4)
    # Filter by state through the form (the URL keeps the filter, never the token).
    page.select_option("#f-state", "cancelled")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert "state=cancelled" in page.url and TOKEN not in page.url
    page.goto(URL + "/#/jobs")
    expect(page.locator("#jobs tbody tr")).to_have_count(4)
    # Sorting by a column (the header is a button: keyboard too), ascending for names.
    page.get_by_role("button", name="Name").click()
    expect(page.locator("#jobs tbody tr td:nth-child(2)")).to_have_text(
        ["browser-dag", "browser-log-and-cancel", "browser-progress", "browser-retry"])
    expect(page.locator("#jobs th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    shot(page, "jobs")
    # Pages through the API's cursors: two jobs a page.
    page.goto(URL + "/#/jobs?limit=2")
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(2)
    first_page = [rows.nth(i).get_attribute("data-job") for i in range(2)]
    page.get_by_role("button", name="Next →").click()
    expect(rows.first).not_to_have_attribute("data-job", first_page[0])
    expect(rows).to_have_count(2)
    assert not {rows.nth(i).get_attribute("data-job") for i in range(2)} & set(first_page)
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_role("button", name="← Previous").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-job", first_page[0])
    expect(rows.nth(1)).to_have_attribute("data-job", first_page[1])


def test_keyboard_reaches_the_pages(page: Page, results):
    page.goto(URL + "/#/")
    expect(page.locator("#page-title")).to_have_text("Farm overview")
    page.keyboard.press("Tab")  # skip link
    expect(page.locator("a.skip")).to_be_focused()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Agents":
            break
    page.keyboard.press("Enter")
    expect(page.locator("#page-title")).to_have_text("Agents")


def confirm(page: Page, button, ok):
    page.get_by_role("button", name=button, exact=True).click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=ok, exact=True).click()
    expect(dialog).to_be_hidden()


def test_job_actions_and_agent_drain(page: Page, results):
    # A job no agent can run: the page says so, and its controls work on it.
    job = submit("browser-too-big", [{"name": "huge", "command": ["true"], "requirements": {"cpus": 64}}])
    page.goto(URL + f"/#/jobs/{job['id']}")
    expect(page.locator("#warnings")).to_contain_text("fit no agent")
    expect(page.locator(f"tr[data-task='{job['task_ids'][0]}']")).to_contain_text("fits no agent")
    page.get_by_role("button", name="Priority…").click()
    page.fill("#priority-input", "42")
    page.press("#priority-input", "Enter")  # Enter in the field confirms
    expect(page.locator("#job-priority")).to_have_text("42")
    confirm(page, "Pause", "Pause")
    expect(page.locator("#page-title")).to_contain_text("paused")
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    confirm(page, "Resume", "Resume")
    expect(page.locator("#page-title")).to_contain_text("queued")
    confirm(page, "Cancel job", "Cancel the job")
    expect(page.locator("#page-title")).to_contain_text("cancelled")
    assert call("GET", f"/v1/jobs/{job['id']}")["priority"] == 42

    agent = call("GET", "/v1/agents")["items"][0]["id"]
    page.goto(URL + f"/#/agents/{agent}")
    confirm(page, "Drain", "Drain")
    expect(page.locator("#page-title")).to_contain_text("draining")
    assert call("GET", f"/v1/agents/{agent}")["state"] == "draining"
    confirm(page, "Undrain", "Undrain")
    expect(page.locator("#page-title")).to_contain_text("online")


def test_exceptions_and_forgetting_an_agent(page: Page, results):
    # A second agent, enrolled by hand: it reports an exception and is then forgotten from its page.
    with open(os.environ["PADDOCK_JOIN_TOKEN_FILE"]) as f:
        join = f.read().strip()
    enrolled = call("POST", "/v1/agents", {"name": "browser-ghost", "resources": {"cpus": 1, "ram": "1GiB"},
                                           "tags": ["ghost"], "version": "test"}, token=join)
    marker = f"cannot exec render-{uuid.uuid4().hex[:8]}"
    call("POST", f"/v1/agents/{enrolled['id']}/exceptions", {"type": "LaunchFailed", "message": marker},
         token=enrolled["credential"])
    page.goto(URL + "/#/")
    expect(page.locator("#exceptions")).to_contain_text(marker)
    expect(page.locator("#exceptions")).to_contain_text("browser-ghost")
    page.goto(URL + f"/#/agents/{enrolled['id']}")
    expect(page.locator("#page-title")).to_contain_text("browser-ghost")
    expect(page.locator("#main")).to_contain_text(marker)
    confirm(page, "Forget", "Forget")
    expect(page.locator("#page-title")).to_have_text("Agents")
    expect(page.locator(f"tr[data-agent='{enrolled['id']}']")).to_have_count(0)
    expect(page.locator("#agents tbody tr")).to_have_count(1)


def test_a_read_token_sees_every_action_disabled(browser, results):
    # Signed in with a read token (named tokens, issue 16): every action is disabled and says why.
    reader = call("POST", "/v1/tokens", {"name": "browser-viewer", "role": "read"})["secret"]
    job = submit("browser-read-only", [{"name": "huge", "command": ["true"], "requirements": {"cpus": 64}}])
    context = browser.new_context(**CONTEXT, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, reader)
        expect(page.locator("#who")).to_have_text("browser-viewer (read)")
        page.goto(URL + f"/#/jobs/{job['id']}")
        expect(page.locator("#read-only")).to_contain_text("read token")
        for name in ["Cancel job", "Pause", "Pause and kill", "Resume", "Retry", "Priority…", "Clear blocklist"]:
            button = page.get_by_role("button", name=name, exact=True)
            expect(button).to_be_disabled()
            expect(button).to_have_attribute("title", "your token has role read: this needs the submit or admin role")
        task = job["task_ids"][0]
        page.goto(URL + f"/#/tasks/{task}")
        expect(page.get_by_role("button", name="Cancel task", exact=True)).to_be_disabled()
        agent = call("GET", "/v1/agents")["items"][0]["id"]
        page.goto(URL + f"/#/agents/{agent}")
        for name in ["Drain", "Undrain", "Forget"]:
            button = page.get_by_role("button", name=name, exact=True)
            expect(button).to_be_disabled()
            expect(button).to_have_attribute("title", "your token has role read: this needs the admin role")
        shot(page, "read-only-agent")
        # A submit token: another owner's job is not its own to control.
        submitter = call("POST", "/v1/tokens", {"name": "browser-alice", "role": "submit"})["secret"]
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, submitter)
        expect(page.locator("#who")).to_have_text("browser-alice (submit)")
        page.goto(URL + f"/#/jobs/{job['id']}")
        expect(page.get_by_role("button", name="Cancel job", exact=True)).to_have_attribute(
            "title", "this job belongs to admin: your submit token (browser-alice) controls only its own jobs")
    finally:
        context.close()
        call("POST", f"/v1/jobs/{job['id']}/cancel")


def test_phone_and_dark_theme(browser, results):
    # A viewer in Tokyo with a British locale: times show in their zone.
    context = browser.new_context(**CONTEXT, viewport={"width": 390, "height": 844}, color_scheme="dark", device_scale_factor=2,
                                  timezone_id="Asia/Tokyo", locale="en-GB")
    page = context.new_page()
    sign_in(page)
    expect(page.locator("#agents-online")).to_contain_text("1 online")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 248)", "dark theme follows prefers-color-scheme"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the overview is {width} px wide on a 390 px phone"
    shot(page, "overview-phone-dark")
    page.goto(URL + f"/#/jobs/{results['cancel_job']}")
    expect(page.locator("#page-title")).to_contain_text("cancelled")
    created = call("GET", f"/v1/jobs/{results['cancel_job']}")["created_at"]
    tokyo = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone(
        datetime.timezone(datetime.timedelta(hours=9)))
    expect(page.locator("#main")).to_contain_text(tokyo.strftime("%d/%m/%Y, %H:%M:%S"))
    shot(page, "job-phone-dark")
    context.close()


def test_banner_while_the_master_is_away(page: Page, results):
    page.goto(URL + "/#/")
    expect(page.locator("#agents-online")).to_contain_text("1 online")
    expect(page.locator("#banner")).to_be_hidden()
    no_reload_marker(page)
    pidfile = os.environ["PADDOCK_MASTER_PIDFILE"]
    with open(pidfile) as f:
        pid = int(f.read())
    os.kill(pid, 15)
    wait_until(f"the master (pid {pid}) to exit", lambda: not os.path.exists(f"/proc/{pid}") or
               open(f"/proc/{pid}/stat").read().split()[2] == "Z")
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("not answering")
    shot(page, "master-away")
    # The same master again (same port and data): the page finds it by itself, and the banner goes.
    with open(os.environ["PADDOCK_MASTER_LOG"], "w") as log:
        restarted = subprocess.Popen(json.loads(os.environ["PADDOCK_MASTER_COMMAND"]), stdout=log, stderr=log)
    with open(pidfile, "w") as f:
        f.write(str(restarted.pid))
    expect(banner).to_be_hidden(timeout=45_000)
    expect(page.locator("#page-title")).to_have_text("Farm overview")
    expect_not_reloaded(page)


def main():
    results = {}
    failures = 0
    headless_args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=headless_args)
        context = browser.new_context(**CONTEXT, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        tests = [
            (test_first_page_load_time, browser), (test_wrong_token_is_refused, browser),
            (test_sign_in_shows_the_farm, page), (test_a_submitted_job_appears_and_progresses, page),
            (test_a_running_tasks_log_follows, page), (test_cancel_a_job_from_the_page, page),
            (test_dependency_graph_is_drawn, page), (test_an_earlier_attempts_log, page),
            (test_agent_cpu_graph_gains_points, page),
            (test_overview_and_jobs_screens, page), (test_a_tasks_status_and_parameters_show, page),
            (test_a_page_waits_for_the_farm_to_move, page),
            (test_keyboard_reaches_the_pages, page),
            (test_job_actions_and_agent_drain, page), (test_exceptions_and_forgetting_an_agent, page),
            (test_a_read_token_sees_every_action_disabled, browser), (test_phone_and_dark_theme, browser), (test_banner_while_the_master_is_away, page),
        ]
        for test, subject in tests:
            started = time.monotonic()
            try:
                test(subject, results)
                print(f"PASS {test.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
            except Exception:
                failures += 1
                print(f"FAIL {test.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
                traceback.print_exc()
                try:
                    shot(page, f"failed-{test.__name__}")
                except Exception:
                    pass
        # Script errors fail the run; the browser's own notes of failed requests do not (the master is
        # stopped on purpose once, and a wrong token is refused on purpose).
        errors = [line for line in console if line.startswith("pageerror")
                  or line.startswith("error") and "Failed to load resource" not in line]
        if errors:
            print("browser console errors:\n  " + "\n  ".join(errors))
            failures += 1
        browser.close()
    if "first_load_ms" in results:
        low, high = results["first_load_range"]
        print(f"first page load (load event, cold cache, loopback): median {results['first_load_ms']:.1f} ms "
              f"of 5 (from {low:.1f} to {high:.1f} ms)")
    print(f"{len(tests) - failures if failures <= len(tests) else 0} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
