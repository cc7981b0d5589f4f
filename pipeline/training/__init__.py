"""What every workflow trains with: ``options.TrainingOptions`` (and each workflow's
``TrainingDefaults``), the precision and device context, the callbacks, and the one skeleton
that compiles, creates, records, fits, evaluates and plots a run (``skeleton``, on the steps
of ``loop``).
"""
