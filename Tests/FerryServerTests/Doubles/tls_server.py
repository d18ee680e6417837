"""What the HTTPS doubles share: serve a handler on a free loopback port over TLS, optionally asking for a client
certificate signed by CA, and publish the port by renaming PORT_FILE into place once listening."""
import http.server, os, ssl


def serve(handler, port_file, cert, key, ca):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(port_file + ".partial", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".partial", port_file)
    server.serve_forever()
