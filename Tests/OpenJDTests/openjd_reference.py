#!/usr/bin/env python3
"""Prints, as JSON, how the reference implementation (openjd-model, pinned in
scripts/setup-debian.sh) expands an Open Job Description template.

Usage: openjd_reference.py TEMPLATE.(yaml|json) [NAME=VALUE ...]
       openjd_reference.py --ranges < JSON list of <IntRangeExpr> strings
       openjd_reference.py --templates < JSON list of job templates (no parameters)
       openjd_reference.py --environments < JSON list of {"job": TEMPLATE, "environments": [...], "values": {...}}

Output: {"name": JOBNAME, "parameters": {NAME: VALUE as a string},
         "steps": [{"name": STEP, "tasks": [{PARAM: {"type": T, "value": V}}, ...]}]}
or, when the reference refuses the template or the values: {"error": MESSAGE}.
With --ranges: a JSON list with, for each expression, its values or {"error": MESSAGE}.
With --templates: a JSON list with, for each template, what the first form prints.
With --environments: a JSON list with, for each case, {"parameters": {NAME: VALUE}} (the values a job
made with those environment templates gets) or {"error": MESSAGE}.
Job parameter values are processed the way a server does (paths left as given).
Used by Tests/OpenJDTests/ReferenceComparisonTests.swift.
"""
import json
import sys
from pathlib import Path

from openjd.model import (
    DecodeValidationError,
    DocumentType,
    IntRangeExpr,
    StepParameterSpaceIterator,
    create_job,
    decode_environment_template,
    decode_job_template,
    document_string_to_object,
    preprocess_job_parameters,
)


def ranges() -> int:
    out = []
    for text in json.load(sys.stdin):
        try:
            out.append(list(IntRangeExpr.from_str(text)))
        except Exception as error:  # the reference's own error types (TokenError, ExpressionError, ValueError)
            out.append({"error": str(error)})
    print(json.dumps(out))
    return 0


def expand(document: dict, values: dict) -> dict:
    try:
        template = decode_job_template(template=document)
        parameters = preprocess_job_parameters(
            job_template=template,
            job_parameter_values=values,
            job_template_dir=Path(),
            current_working_dir=Path(),
            allow_job_template_dir_walk_up=True,
        )
        job = create_job(job_template=template, job_parameter_values=parameters)
    except (DecodeValidationError, ValueError, RuntimeError) as error:
        return {"error": str(error)}
    steps = []
    for step in job.steps:
        tasks = []
        if step.parameterSpace is not None:
            for task in StepParameterSpaceIterator(space=step.parameterSpace):
                tasks.append({name: {"type": p.type.value, "value": str(p.value)} for name, p in task.items()})
        else:
            tasks.append({})
        steps.append({"name": step.name, "tasks": tasks})
    return {
        "name": job.name,
        "parameters": {name: str(p.value) for name, p in parameters.items()},
        "steps": steps,
    }


def with_environments(case: dict) -> dict:
    try:
        environments = [decode_environment_template(template=e) for e in case["environments"]]
        template = decode_job_template(template=case["job"])
        parameters = preprocess_job_parameters(
            job_template=template,
            job_parameter_values=case["values"],
            job_template_dir=Path(),
            current_working_dir=Path(),
            allow_job_template_dir_walk_up=True,
            environment_templates=environments,
        )
    except (DecodeValidationError, ValueError, RuntimeError) as error:
        return {"error": str(error)}
    return {"parameters": {name: str(p.value) for name, p in parameters.items()}}


def main() -> int:
    if sys.argv[1:] == ["--environments"]:
        print(json.dumps([with_environments(case) for case in json.load(sys.stdin)]))
        return 0
    if sys.argv[1:] == ["--ranges"]:
        return ranges()
    if sys.argv[1:] == ["--templates"]:
        print(json.dumps([expand(document, {}) for document in json.load(sys.stdin)]))
        return 0
    path = Path(sys.argv[1])
    values = dict(arg.split("=", 1) for arg in sys.argv[2:])
    kind = DocumentType.JSON if path.suffix == ".json" else DocumentType.YAML
    document = document_string_to_object(document=path.read_text(), document_type=kind)
    print(json.dumps(expand(document, values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
