"""Reports: the console results table, leaderboards, comparisons and plots."""
