#!/usr/bin/env python3
"""A Kubernetes API server double for Ferry's tests: the few core/v1 calls a restore makes, over HTTPS, with the
API server's own answers (Status objects for errors, the object itself for successes).

GET  /api, /apis, /api/v1                      discovery (APIVersions, an empty APIGroupList, the pods and nodes resources),
                                               so kubectl can map a manifest to its type
GET  /api/v1/nodes/{name}                      the node from NODES (JSON file: {name: {runtime, kubelet, arch, ready}});
                                               404 Status NotFound otherwise
GET  /api/v1/nodes/{name}/proxy/configz        {"kubeletconfig": {"featureGates": {...}}} from the node's "gates";
                                               403 Status Forbidden when the node has "configz": "forbidden"
POST /api/v1/namespaces/{ns}/pods              validates the Pod as the API server would for these fields (kind, apiVersion,
                                               metadata.name a DNS label, namespace equal to the path's, at least one
                                               container with a name and an image, nodeName set): 422 Status Invalid when not;
                                               409 AlreadyExists when the name is taken; else 201 with the stored Pod
                                               (uid and creationTimestamp added, status.phase Pending)
GET  /api/v1/namespaces/{ns}/pods/{name}       the Pod, its status moving on at each GET according to its image's
                                               behaviour (BEHAVIOUR file: {"default": "run"} or per pod name):
                                               "run": Pending → ContainerCreating → Running (container running)
                                               "pull-fails": ErrImagePull → ImagePullBackOff
                                               "restore-fails": CreateContainerError with CRI-O's restore message
                                               "exits": Running → terminated (exit 1) and phase Failed
                                               "stuck": Pending, ContainerCreating for ever
Authentication: "Authorization: Bearer TOKEN" or a client certificate signed by CA with CN=ferry-client; else 401
Status Unauthorized; the token "forbidden-token" gets 403 Forbidden for every call.
Every request is appended to LOG as a JSON line (method, path, auth, body for POSTs); created Pods are kept in
memory only.

Usage: apiserver_double.py PORT_FILE CERT KEY CA TOKEN NODES BEHAVIOUR LOG
"""
import datetime, http.server, json, re, sys, threading, uuid
import tls_server

port_file, cert, key, ca, token, nodes_file, behaviour_file, log = sys.argv[1:9]
FORBIDDEN_TOKEN = "forbidden-token"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
pods = {}
lock = threading.Lock()


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return code, body


class APIServer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authenticated(self, body):
        auth = self.headers.get("Authorization", "")
        peer = self.connection.getpeercert() or {}
        subject = dict(item[0] for item in peer.get("subject", ()))
        kind = "token" if auth == "Bearer " + token else ("certificate" if subject.get("commonName") == "ferry-client" else
                                                        ("forbidden" if auth == "Bearer " + FORBIDDEN_TOKEN else "none"))
        with open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "auth": kind, "body": body}) + "\n")
        if kind == "forbidden":
            self.answer(*status(403, "Forbidden", 'pods is forbidden: User "system:serviceaccount:ferry:restorer" cannot create resource "pods"'))
            return False
        if kind == "none":
            self.answer(*status(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def do_GET(self):
        if not self.authenticated(None):
            return
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["api"]:
            return self.answer(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%d" % self.server.server_address[1]}]})
        if parts == ["apis"]:
            return self.answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if parts == ["api", "v1"]:
            return self.answer(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["po"]},
                {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
                 "verbs": ["get", "list", "watch"], "shortNames": ["no"]}]})
        with open(nodes_file) as f:
            nodes = json.load(f)
        if len(parts) >= 4 and parts[:3] == ["api", "v1", "nodes"]:
            node = nodes.get(parts[3])
            if node is None:
                return self.answer(*status(404, "NotFound", 'nodes "%s" not found' % parts[3]))
            if parts[4:] == ["proxy", "configz"]:
                if node.get("configz") == "forbidden":
                    return self.answer(*status(403, "Forbidden", "nodes \"%s\" is forbidden: cannot get resource \"nodes/proxy\"" % parts[3]))
                return self.answer(200, {"kubeletconfig": {"featureGates": node.get("gates", {})}})
            if len(parts) == 4:
                return self.answer(200, {
                    "kind": "Node", "apiVersion": "v1", "metadata": {"name": parts[3]},
                    "status": {"nodeInfo": {"containerRuntimeVersion": node["runtime"], "kubeletVersion": node["kubelet"],
                                            "architecture": node.get("arch", "amd64")},
                               "conditions": [{"type": "Ready", "status": "True" if node.get("ready", True) else "False",
                                               "message": "kubelet is posting ready status" if node.get("ready", True) else "Kubelet stopped posting node status."}]}})
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            with lock:
                pod = pods.get((parts[3], parts[5]))
                if pod is None:
                    return self.answer(*status(404, "NotFound", 'pods "%s" not found' % parts[5]))
                advance(pod)
                return self.answer(200, pod)
        return self.answer(*status(404, "NotFound", "the server could not find the requested resource"))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        if not self.authenticated(body):
            return
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if not (len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods"):
            return self.answer(*status(404, "NotFound", "the server could not find the requested resource"))
        namespace = parts[3]
        problems = validate(body, namespace)
        if problems:
            name = (body or {}).get("metadata", {}).get("name", "") if isinstance(body, dict) else ""
            return self.answer(*status(422, "Invalid", 'Pod "%s" is invalid: %s' % (name, "; ".join(problems)),
                                       {"name": name, "kind": "Pod"}))
        name = body["metadata"]["name"]
        with lock:
            if (namespace, name) in pods:
                return self.answer(*status(409, "AlreadyExists", 'pods "%s" already exists' % name,
                                           {"name": name, "kind": "pods"}))
            pod = json.loads(json.dumps(body))
            pod["metadata"]["uid"] = str(uuid.uuid4())
            pod["metadata"]["creationTimestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            pod["status"] = {"phase": "Pending"}
            pod["_gets"] = 0
            pods[(namespace, name)] = pod
            shown = {k: v for k, v in pod.items() if not k.startswith("_")}
        return self.answer(201, shown)

    def log_message(self, *args):
        pass


def validate(pod, namespace):
    """The checks the API server makes on the fields Ferry writes (a subset of Pod validation)."""
    if not isinstance(pod, dict):
        return ["the body is not a JSON object"]
    problems = []
    if pod.get("kind") != "Pod" or pod.get("apiVersion") != "v1":
        problems.append("kind and apiVersion must be Pod and v1")
    metadata = pod.get("metadata") or {}
    if not DNS_LABEL.match(metadata.get("name") or ""):
        problems.append("metadata.name: Invalid value: a lowercase RFC 1123 label")
    if metadata.get("namespace") not in (None, namespace):
        problems.append("metadata.namespace: Invalid value: does not match the namespace of the request")
    for key, value in list((metadata.get("labels") or {}).items()) + list((metadata.get("annotations") or {}).items()):
        if not isinstance(value, str):
            problems.append("metadata: label or annotation %s is not a string" % key)
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        problems.append("spec.containers: Required value")
    for index, container in enumerate(containers):
        if not DNS_LABEL.match(container.get("name") or ""):
            problems.append("spec.containers[%d].name: Invalid value" % index)
        if not container.get("image"):
            problems.append("spec.containers[%d].image: Required value" % index)
        for section in ("limits", "requests"):
            for resource, quantity in ((container.get("resources") or {}).get(section) or {}).items():
                if not isinstance(quantity, str) or not re.match(r"^[0-9]+(m|Ki|Mi|Gi)?$", quantity):
                    problems.append("spec.containers[%d].resources.%s[%s]: Invalid value: %r" % (index, section, resource, quantity))
    if spec.get("restartPolicy") not in ("Always", "OnFailure", "Never"):
        problems.append("spec.restartPolicy: Unsupported value")
    if not spec.get("nodeName"):
        problems.append("spec.nodeName: Ferry pins its Pods; the double requires it")
    return problems


def advance(pod):
    """Moves a Pod's status one step on, as the kubelet would report it between two GETs."""
    with open(behaviour_file) as f:
        behaviours = json.load(f)
    behaviour = behaviours.get(pod["metadata"]["name"], behaviours.get("default", "run"))
    pod["_gets"] += 1
    step = pod["_gets"]
    name = pod["spec"]["containers"][0]["name"]

    def waiting(reason, message=None):
        detail = {"reason": reason}
        if message:
            detail["message"] = message
        return [{"name": name, "ready": False, "state": {"waiting": detail}}]

    if behaviour == "run":
        if step == 1:
            pod["status"] = {"phase": "Pending", "containerStatuses": waiting("ContainerCreating")}
        else:
            pod["status"] = {"phase": "Running", "containerStatuses": [
                {"name": name, "ready": True, "state": {"running": {"startedAt": "2026-12-02T10:00:00Z"}}}]}
    elif behaviour == "pull-fails":
        pod["status"] = {"phase": "Pending", "containerStatuses": waiting(
            "ErrImagePull" if step == 1 else "ImagePullBackOff",
            'Back-off pulling image "%s"' % pod["spec"]["containers"][0]["image"])}
    elif behaviour == "restore-fails":
        pod["status"] = {"phase": "Pending", "containerStatuses": waiting(
            "CreateContainerError", "failed to restore container counter: criu failed: type RESTORE errno 0")}
    elif behaviour == "exits":
        if step == 1:
            pod["status"] = {"phase": "Running", "containerStatuses": [{"name": name, "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        else:
            pod["status"] = {"phase": "Failed", "containerStatuses": [
                {"name": name, "ready": False, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
    else:
        pod["status"] = {"phase": "Pending", "containerStatuses": waiting("ContainerCreating")}


tls_server.serve(APIServer, port_file, cert, key, ca)
