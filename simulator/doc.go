// Package simulator is a software cellular module: it speaks AT commands
// like a Quectel, SIMCom, Huawei, … LTE/5G module, over an in-process pipe or
// a real pseudo-terminal, so that the agent and users' gateway software can
// be tested without hardware.
//
// # Concepts
//
// A Profile is one module model, loaded from an embedded YAML file in
// profiles/ (schema: profiles/SCHEMA.md). It holds the USB identity (VID:PID,
// which interfaces carry AT), the V.250 defaults (echo, CMEE), the error
// style, the boot chatter and deaf period, the identity strings and how the
// module formats each identity answer (prefixes, quotes, ATI blocks, vendor
// firmware and ICCID commands), persistent settings, and which dialect of
// internal IP stack the module speaks. Profiles lists them; LoadProfile loads
// one by name; LoadProfileFile loads a user's own file.
//
// A Modem (New) is one instance of a profile. Its IMEI (TAC + serial + Luhn
// digit), IMSI and ICCID are generated from Options.Seed: the same seed
// gives the same module. The modem holds the state machine: CFUN, SIM
// (ready, absent, PIN-locked), registration (+CREG/+CGREG/+CEREG/+C5GREG with
// URCs), operator (+COPS, with a slow AT+COPS=?), signal, PDP contexts, SMS
// (+CMGS with the "> " prompt), the module's own IP stack (every socket,
// MQTT, HTTP, FTP, FOTA, ping, DNS or NTP destination is recorded in
// Connections; byte counters grow in Traffic) and settings that survive a
// simulated reboot (Setting). Every line received is kept (Received) and can
// be streamed to Options.Transcript.
//
// Each host connection is a channel on one AT port (Pipe, PipePort,
// ServePTY). A channel has its own V.250 settings (echo, V, Q, CMEE, +CREG n)
// and three goroutines: a reader (connection → bytes), an engine (echo, line
// assembly, command-line parsing with ';' chains and A/, prompts, execution
// under the modem's mutex) and a writer (output queue → connection, where
// latency and split-write faults apply). URCs queue on the channel of the
// profile's URC port; while a command runs they wait until its final result.
// Modem.Close stops every goroutine and returns when they have exited.
//
// The pty transport (Linux, package pty) opens /dev/ptmx through golang.org/x/sys/unix,
// puts it in raw mode before writing anything and keeps its own slave
// descriptor open, so clients (go.bug.st/serial, pyserial) can close and
// reopen the device. An optional symlink gives it a stable name. On a
// reboot the pty vanishes and a new one appears behind the same link when
// the module's USB ports come back.
//
// Faults (latency, jitter, split writes, dropped answers, garbage, a URC
// inside an answer, a reboot instead of an answer, a module lying about its
// identity) are set in Options.Faults, changed with SetFaults, or parsed
// from a command-line spec by ParseFaults. Scenario files (ParseScenario,
// Modem.Play) apply registration changes, roaming, SIM removal and swap,
// reboots and firmware changes over time. Tests drive time with
// testing/synctest over Pipe; Options.Boot off (the default) makes the modem
// ready at once.
//
// Of this module the package imports only pty; command modemsim
// serves a modem on a pty from the command line.
package simulator
