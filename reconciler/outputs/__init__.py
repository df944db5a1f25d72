"""Outputs as code: a SUCCEEDED run's files in the manifest's `outputs.path`, verified,
swapped in whole, and recorded in state (the lock of the data).

Pure (no filesystem, no network):

    select.py    which of a run's generated files are written, and the refusal of
                 hostile names (`..`, absolute paths, control characters, clashes)
    compare.py   FolderCheck: does a folder hold what state recorded (pulled,
                 missing, modified, not pulled)
    needs.py     PullChange and pulls_needed: the plan's `pull` action

I/O:

    scan.py      reading output folders (lstat, sha256; never following a link)
    hashcache.py the sha256 of unchanged files, remembered between commands
    staging.py   the staging folder beside the output folder: verified files,
                 the resume journal, the atomic swap and its crash recovery
    download.py  one file: fresh link, stream, verify, retry once
    pull.py      Puller: runs side by side, downloads bounded by --parallelism
    progress.py  the live display and the one-line-per-run report on stderr

`reconciler.commands.pull` is the command; `reconciler.api.files` and
`reconciler.api.runfiles` the network side (the file host has its own client,
which never carries the API key).
"""
