"""Puts a fresh master in a state worth fuzzing, through its API only, and writes the
Schemathesis configuration of both passes (Tests/fuzz/run.sh).

The master gets: an agent enrolled for the fuzzer (its credential drives the agent-only routes),
a second idle agent, jobs whose tasks are queued, blocked, running, succeeded (with a log),
failed and cancelled, a paused job, a named token and an exception report. The ids made are
offered to the fuzzer through dictionaries (half of the generated path ids, the rest generated),
so that the routes with an `{id}` reach their handlers, not only their 404.

Usage: seed.py URL ADMIN_TOKEN_FILE JOIN_TOKEN_FILE OUT_DIR
Writes OUT_DIR/agent.toml (pass 1: the agent-only routes, with the agent's credential),
OUT_DIR/admin.toml (pass 2: every other route, with the admin token) and OUT_DIR/seed.json.
"""

import json
import sys
import urllib.error
import urllib.request

url, admin_file, join_file, out = sys.argv[1:5]
admin = open(admin_file).read().strip()
join = open(join_file).read().strip()


def call(method, path, token, body=None, raw=None, expect=(200, 201, 204)):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if raw is not None:
        headers["Content-Type"] = "application/octet-stream"
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    if status not in expect:
        sys.exit(f"seed.py: {method} {path} answered {status}: {payload[:500]!r}")
    return json.loads(payload) if payload and payload[:1] in (b"{", b"[") else None


def enroll(name):
    return call("POST", "/v1/agents", join, {"name": name, "resources": {"cpus": 8, "ram": "16GiB", "disk": "100GiB"},
                                             "tags": ["fuzz"], "version": "fuzz"})


fuzz_agent = enroll("fuzz-agent")
idle_agent = enroll("idle-agent")
agent_token = fuzz_agent["credential"]
agent_id = fuzz_agent["id"]

# A job whose tasks the fuzz agent runs through every outcome, one with a dependency, one that waits.
job = call("POST", "/v1/jobs", admin, {
    "name": "fuzz-seed", "owner": "fuzz", "labels": {"suite": "fuzz"}, "max_attempts": 1,
    "tasks": [
        {"name": "ok", "command": ["echo", "ok"], "priority": 30},
        {"name": "bad", "command": ["false"], "priority": 20},
        {"name": "live", "command": ["sleep", "600"], "priority": 10},
        {"name": "after-ok", "command": ["echo", "after"], "depends_on": ["bad"]},
        {"name": "queued", "command": ["echo", "queued"], "requirements": {"gpus": 1}},
    ]})
claimed = call("POST", f"/v1/agents/{agent_id}/claim", agent_token, {"slots": 3})
leases = {lease["name"]: lease for lease in claimed["leases"]}
if set(leases) != {"ok", "bad", "live"}:
    sys.exit(f"seed.py: the claim leased {sorted(leases)}, not ok, bad and live")
for name, lease in leases.items():
    task, epoch = lease["task"], lease["epoch"]
    call("POST", f"/v1/tasks/{task}/start", agent_token, {"epoch": epoch})
    call("POST", f"/v1/tasks/{task}/logs?epoch={epoch}&offset=0", agent_token, raw=f"{name}: some output\n".encode())
    call("POST", f"/v1/tasks/{task}/progress", agent_token, {"epoch": epoch, "progress": 0.5}, expect=(204,))
leases_ok, leases_bad = leases["ok"], leases["bad"]
call("POST", f"/v1/tasks/{leases_ok['task']}/finish", agent_token,
     {"epoch": leases_ok["epoch"], "outcome": "succeeded", "exit_code": 0})
call("POST", f"/v1/tasks/{leases_bad['task']}/finish", agent_token,
     {"epoch": leases_bad["epoch"], "outcome": "failed", "exit_code": 1, "reason": "exit 1"})
call("POST", f"/v1/agents/{agent_id}/exceptions", agent_token, {"type": "launch_failed", "message": "seeded"})

paused = call("POST", "/v1/jobs", admin, {"name": "fuzz-paused", "frames": "1-4", "chunk": 2,
                                          "command": ["echo", "{start}-{end}"]})
call("POST", f"/v1/jobs/{paused['id']}/pause", admin, {"kill": False})
cancelled = call("POST", "/v1/jobs", admin, {"name": "fuzz-cancelled", "tasks": [{"name": "c", "command": ["true"]}]})
call("POST", f"/v1/jobs/{cancelled['id']}/cancel", admin)
token = call("POST", "/v1/tokens", admin, {"name": "fuzz-reader", "role": "read"})
call("PUT", f"/v1/agents/{agent_id}/heartbeat", agent_token,
     {"held": [{"task": leases["live"]["task"], "epoch": leases["live"]["epoch"]}]})

jobs = [job["id"], paused["id"], cancelled["id"]]
tasks = [t["id"] for t in call("GET", "/v1/tasks?limit=1000", admin)["items"]]
agents = [agent_id, idle_agent["id"]]
tokens = [token["token"]["id"]]
epochs = sorted({lease["epoch"] for lease in leases.values()})
seed = {"jobs": jobs, "tasks": tasks, "agents": agents, "tokens": tokens, "epochs": epochs,
        "agent": agent_id, "live_task": leases["live"]["task"]}
json.dump(seed, open(f"{out}/seed.json", "w"), indent=1)


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


# The ids exist; their bare numbers are accepted too (`12` for `j12`). Half of the generated ids
# come from these, the other half is generated (404s, malformed ids).
dictionaries = f"""
[cache]
enabled = false
[dictionaries.jobs]
values = {toml_list(jobs + [j[1:] for j in jobs])}
[dictionaries.tasks]
values = {toml_list(tasks + [t[1:] for t in tasks])}
[dictionaries.agents]
values = {toml_list(agents + [a[1:] for a in agents])}
[dictionaries.tokens]
values = {toml_list(tokens)}
[dictionaries.epochs]
values = {toml_list(epochs)}
[dictionaries.packages]
values = ["paddock_0.0.0-fuzz_amd64.deb"]
"""


def by_path(regex, dictionary):
    return f"""
[[operations]]
include-path-regex = '{regex}'
parameters = {{ "path.id" = {{ dictionary = "{dictionary}", probability = 0.5 }} }}
"""


# Pass 1: the routes only an agent's credential may call, as the fuzz agent (itself in the path).
agent_only = ["heartbeat", "claim", "exchange", "startTask", "progressTask", "finishTask", "uploadTaskLogs",
              "reportException"]
with open(f"{out}/agent.toml", "w") as f:
    f.write(f'headers = {{ Authorization = "Bearer {agent_token}" }}\n')
    f.write(dictionaries)
    f.write(by_path("^/v1/tasks/", "tasks"))
    f.write(by_path("^/v1/agents/", "agents"))
    f.write("""
[[operations]]
include-operation-id = "uploadTaskLogs"
parameters = { "query.epoch" = { dictionary = "epochs", probability = 0.5 } }
[[operations]]
include-operation-id = ["startTask", "progressTask", "finishTask"]
parameters = { "body.epoch" = { dictionary = "epochs", probability = 0.5 } }
""")
# Pass 2: every other route, with the admin token.
with open(f"{out}/admin.toml", "w") as f:
    f.write(f'headers = {{ Authorization = "Bearer {admin}" }}\n')
    f.write(dictionaries)
    f.write(by_path("^/v1/jobs/", "jobs"))
    f.write(by_path("^/v1/tasks/", "tasks"))
    f.write(by_path("^/v1/agents/", "agents"))
    f.write(by_path("^/v1/tokens/", "tokens"))
    # Most generated submissions are refused (a program that is empty, which the document cannot
    # forbid: OpenAPI 3.0 has no tuples; unknown attributes, jobs to run after that do not exist):
    # more random ones get some through to the store.
    f.write("""
[[operations]]
include-operation-id = "submitJob"
generation = { max-examples = 60 }
""")
    f.write("""
[[operations]]
include-operation-id = "agentPackage"
parameters = { "path.name" = { dictionary = "packages", probability = 0.5 } }
""")
with open(f"{out}/agent-only", "w") as f:
    f.write("\n".join(agent_only) + "\n")
print(f"seed.py: jobs {jobs}, {len(tasks)} tasks, agents {agents} (fuzz agent {agent_id}), token {tokens}")
