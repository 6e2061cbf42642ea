"""Prints, for each operation a Schemathesis NDJSON report holds, how many answers of each status
it got: whether the fuzzing reached the handlers (200s, 409s) or only their 404s and 400s.

Usage: statuses.py REPORT.ndjson...
"""

import collections
import json
import sys

counts = collections.defaultdict(collections.Counter)
for path in sys.argv[1:]:
    with open(path) as report:
        for line in report:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            for interaction in (finished.get("recorder") or {}).get("interactions", {}).values():
                request, response = interaction["request"], interaction.get("response")
                label = finished["recorder"]["label"]
                if request["method"] != label.split(" ", 1)[0]:
                    label = "(a method the path does not serve)"
                counts[label][response["status_code"] if response else "no answer"] += 1
for label in sorted(counts):
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(counts[label].items(), key=lambda item: str(item[0])))
    print(f"  {label:45} {statuses}")
