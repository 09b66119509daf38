"""Detector models and the detectors that run them, plugged into the endpoint through its seams.

Owns the ``iotevents`` detector-model control plane and the ``iotevents-data`` detector
operations, and everything a detector does with a processed message. Modules, from pure to
stateful: ``models`` (a CreateDetectorModel definition checked and compiled, or refused naming
the place), ``analysis`` (the analysis errors that block publishing a model), ``state`` (frozen
values: runnable models, triggers, detectors, action records), ``runtime`` (one detector
evaluated against one message or timer: the documented rules, pure), ``snapshot`` (models and
detectors as JSON, for ``--state``), ``admission`` (refusals, routing and what detectors see of
a message), ``registry`` (models, detectors, timers, the ``iotEvents`` action and the action log
of one endpoint; the one lock), ``routes`` (the HTTP operations and the seams: processor, gate,
delete guard) and ``examples`` (detector models of the developer guide, for tests, examples and
demos).

Expressions are parsed and evaluated by ``ordered_sender.emulator.expressions``; nothing here
reads the clock (time is passed in) except ``routes``, which reads the endpoint's injected clock.
"""
