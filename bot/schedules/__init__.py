"""The calendar: which features' rows are due when (planning) and the jobs that ask
(scheduling). It sits above the features, which sit above delivery."""
