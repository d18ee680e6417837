#!/usr/bin/env python3
"""A kubelet double for Ferry's tests: the checkpoint API of KEP-2008 over HTTPS, exactly as the kubelet serves it.

POST /checkpoint/{namespace}/{pod}/{container}[?timeout=SECONDS]
  - authentication: a bearer token equal to TOKEN, or a client certificate signed by the CA with CN=system:node-admin;
    none of these: 401 "Unauthorized"; the token FORBIDDEN_TOKEN: 403 with the kubelet's Forbidden text.
  - container "missing": 404 "404 page not found" (what an unregistered route, feature gate off, answers)
  - container "broken": 500 "checkpointing of NS/POD/broken failed (rpc error: ...)"
  - container "slow": answers after 5 s
  - any other container: copies ARCHIVE into CHECKPOINT_DIR as checkpoint-POD_NS-CONTAINER-TIME.tar (the kubelet's
    name) and answers 200 {"items":["PATH"]}.
Every request is appended to LOG as one JSON line (method, path, query, auth kind).

Usage: kubelet_double.py PORT_FILE CERT KEY CA TOKEN ARCHIVE CHECKPOINT_DIR LOG
"""
import datetime, http.server, json, os, shutil, sys, time, urllib.parse
import tls_server

port_file, cert, key, ca, token, archive, checkpoint_dir, log = sys.argv[1:9]
FORBIDDEN_TOKEN = "forbidden-token"


class Kubelet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        peer = self.connection.getpeercert() or {}
        subject = dict(item[0] for item in peer.get("subject", ()))
        kind = "token" if auth == "Bearer " + token else ("certificate" if subject.get("commonName") == "system:node-admin" else "none")
        with open(log, "a") as f:
            f.write(json.dumps({"method": "POST", "path": url.path, "query": url.query, "auth": kind}) + "\n")
        if auth == "Bearer " + FORBIDDEN_TOKEN:
            return self.answer(403, "Forbidden (user=system:serviceaccount:ferry:agent, verb=create, resource=nodes, subresource=checkpoint)")
        if kind == "none":
            return self.answer(401, "Unauthorized")
        parts = url.path.split("/")
        if len(parts) != 5 or parts[1] != "checkpoint" or not all(parts[2:]):
            return self.answer(404, "404 page not found")
        namespace, pod, container = (urllib.parse.unquote(p) for p in parts[2:])
        if container == "missing":
            return self.answer(404, "404 page not found")
        if container == "broken":
            return self.answer(500, "checkpointing of %s/%s/%s failed (rpc error: code = Unknown desc = failed to checkpoint container: criu failed: type NOTIFY errno 0)" % (namespace, pod, container))
        if container == "slow":
            time.sleep(5)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z")
        path = os.path.join(checkpoint_dir, "checkpoint-%s_%s-%s-%s.tar" % (pod, namespace, container, stamp))
        shutil.copyfile(archive, path)
        self.answer(200, json.dumps({"items": [path]}), "application/json")

    def log_message(self, *args):
        pass


tls_server.serve(Kubelet, port_file, cert, key, ca)
