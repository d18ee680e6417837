#!/usr/bin/env python3
"""Checks recorded HTTP exchanges against docs/openapi.yaml.

Usage: openapi_check.py SPEC < exchanges.jsonl
Each input line: {"method": "GET", "path": "/api/v1/checkpoints?x=1", "status": 200,
                  "content_type": "application/json", "body": "..."}
The spec itself must be valid OpenAPI 3.1; each exchange must hit a documented operation with a documented
status, and a JSON body must match the documented schema. Every documented operation must be exercised.
Prints one line per problem and exits 1 if there is any.
"""
import json
import re
import sys

import jsonschema
import yaml
from openapi_spec_validator import validate

spec = yaml.safe_load(open(sys.argv[1]))
problems = []
try:
    validate(spec)
except Exception as error:  # the validator's own exception types vary by version
    problems.append(f"spec: {error}")

templates = []
for template, item in spec["paths"].items():
    pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
    templates.append((re.compile(pattern), template, item))

exercised = set()
for number, line in enumerate(sys.stdin, 1):
    exchange = json.loads(line)
    method = exchange["method"].lower()
    path = exchange["path"].split("?")[0]
    match = next(((template, item) for pattern, template, item in templates if pattern.match(path)), None)
    if match is None:
        problems.append(f"{exchange['method']} {path}: no such path in the spec")
        continue
    template, item = match
    operation = item.get(method)
    if operation is None:
        problems.append(f"{exchange['method']} {template}: method not in the spec")
        continue
    exercised.add((template, method))
    status = str(exchange["status"])
    response = operation["responses"].get(status) or operation["responses"].get("default")
    if response is None:
        problems.append(f"{exchange['method']} {template}: status {status} not documented")
        continue
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
    content = response.get("content", {})
    content_type = (exchange.get("content_type") or "").split(";")[0].strip()
    if content and exchange.get("body") and content_type not in content:
        problems.append(f"{exchange['method']} {template} {status}: content type {content_type!r} not documented")
        continue
    media = content.get(content_type, {})
    if content_type == "application/json" and "schema" in media:
        try:
            body = json.loads(exchange["body"])
        except ValueError:
            problems.append(f"{exchange['method']} {template} {status}: body is not JSON")
            continue
        root = {"components": spec["components"], **media["schema"]}
        validator = jsonschema.Draft202012Validator(root)
        for error in validator.iter_errors(body):
            where = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{exchange['method']} {template} {status}: {where}: {error.message[:200]}")

for template, item in spec["paths"].items():
    for method in ("get", "head", "post", "put", "delete", "patch"):
        if method in item and (template, method) not in exercised:
            problems.append(f"{method.upper()} {template}: documented but not exercised")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
