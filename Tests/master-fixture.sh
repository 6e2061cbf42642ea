# Sourced by the suites that start a real master from a shell script (Tests/browser/run.sh,
# Tests/fuzz/run.sh).

# new_tokens DIR: DIR/admin-token and DIR/join-token, 18 random bytes each as hex, mode 0600.
new_tokens() {
    (umask 077
     head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1/admin-token"
     head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1/join-token")
}

# free_port PYTHON: a loopback TCP port free at the time of asking.
free_port() {
    "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
