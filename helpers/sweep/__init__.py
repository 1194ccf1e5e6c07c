"""Sweeps: many runs of the book's chapters at once, as Ray tasks, on one machine or a cluster.

    python -m helpers.sweep 00_primer --profile small --seeds 0-4 -p eps 0.05,0.1,0.2
    python -m helpers.sweep 00_primer --profile full --seeds 0-4 --address 10.0.0.5:6379

A sweep is a grid, chapters x profiles x seeds x the values of each ``-p`` parameter; each point is one run of the
real pipeline (``helpers.pipeline``: jupytext + papermill) into its own folder. The modules, by concern:

- ``grid``: parse and check the grid against the project (chapters, profiles, parameters cells), list its points;
- ``engine``: run the points as Ray tasks, skip those done, retry failures once, keep going, survive Ctrl-C;
- ``summary``: ``summary.json``, the claims and numbers across seeds, and each swept parameter as a curve;
- ``__main__``: the command line (``make sweep``).

Importing the package does no work; Ray is imported only when a sweep runs.
"""
