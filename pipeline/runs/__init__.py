"""The run folder and its typed records: ``folder.Run`` (one training folder with its
``config.json``, written by ``record.RunRecord``) and ``chapter_record`` (the folder of the whole
chapter, ``chapter.json``). Only these modules read and write those files.
"""
