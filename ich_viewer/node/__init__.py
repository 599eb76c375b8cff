"""The DICOM node: storage SCP, the managed store, the worklist index, query/retrieve, send.

Qt-free (pynetdicom and sqlite3 only), so ``ich-viewer serve`` runs without a window and
the window's worklist panel reads the same index. The classifier is not imported here:
whoever starts a node hands it an ``Analyser`` (``commands.node`` builds it on
``commands.analyze.analyze_study``, the code path of ``ich-viewer analyze``).
"""
