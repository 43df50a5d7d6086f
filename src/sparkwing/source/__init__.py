"""Where a run's code comes from when it runs away from the submitter's checkout: a git
mirror kept per repository, or a content-addressed snapshot on the cache surface."""
