# monitor.py SOCKET COMMAND: runs one command on QEMU's human monitor (a
# unix socket) and prints its answer.
import socket
import sys
import time

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
end = time.time() + 5
while time.time() < end:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
