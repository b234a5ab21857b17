package main

// longHelp is aird's --help text and the DESCRIPTION of aird(8).
const longHelp = `aird runs the node's network planes: the XDP load balancer on the uplinks
(node.uplinks), the embedded BGP speaker that advertises pod prefixes and
service VIPs to the top-of-rack switches, and the local API that airctl
uses. It is configured from one TOML file (aird.toml(5)) and is meant to
run under systemd (aird.service: Type=notify, reload, watchdog).

Signals: SIGHUP re-reads the configuration file (as airctl reload does); a
file with any error changes nothing. SIGTERM and SIGINT end aird. Under
systemd aird asks which job ends it: systemctl stop withdraws its BGP
routes, systemctl restart (or no job) keeps them through graceful restart,
and SIGUSR2 is ignored. Outside systemd SIGTERM and SIGINT withdraw the
routes, and SIGUSR2 ends aird keeping them, for a supervisor to start it
again. Either way the XDP data plane stays attached and pinned under
datapath.pin-path, so the node keeps forwarding and the next start adopts
it; aird --cleanup detaches and removes it.

Exit status: 0 on success; 1 when the configuration is invalid, the
daemon fails, or --check-config finds errors; 2 on a usage error.`

// manSections are aird(8)'s sections beyond the help text (markdown).
const manSections = `# FILES

**/etc/aird/aird.toml**
: the configuration file (aird.toml(5))

**/run/aird/aird.sock**
: the API socket (api.socket), used by airctl(8)

**/sys/fs/bpf/aird**
: pinned maps, programs and links of the data plane (datapath.pin-path)

**/run/aird/bgp-drained**, **/run/aird/lb-drained**
: drains kept across a restart (next to api.socket)

**/var/lib/aird**
: state kept across restarts: ipam.db (the IPAM store), endpoints.db (the endpoints) and config.snapshot (a large configuration as last parsed, which a restart with the file unchanged reads instead of parsing it); $STATE_DIRECTORY when systemd sets it

# ENVIRONMENT

**NOTIFY_SOCKET**, **WATCHDOG_USEC**
: set by systemd: aird reports READY=1, RELOADING=1, STOPPING=1, STATUS= and watchdog keep-alives.

**JOURNAL_STREAM**
: set by systemd: when stderr is the journal's stream aird logs structured journal entries with priorities.

# SEE ALSO

airctl(8), aird.toml(5), systemd.service(5), journalctl(1)
`
