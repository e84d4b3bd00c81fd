"""The sandbox, a stage of its own: every generated or retrieved program runs here and nowhere
else (`runner.run_code`), in bubblewrap under a seccomp filter (`seccomp_filter`), with a cgroup
(`run_cgroup`) and a uid (`uid_lease`) of its own per run where the server can give them.
`answer` (choosing an answer) and `evaluation` (judging one) both use it."""
