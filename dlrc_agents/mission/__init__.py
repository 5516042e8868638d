"""kind: mission — SimPy satellite agents run real DLRC over the simulated network and downlink to the ground.

Simulated time is orbit time: t = 0 at ``time.start``. Two worlds run side by side in
one SimPy environment on the same captures: the baseline (the codec alone) and DLRC.

Per participating satellite (a *slot*: one of the ``participants.count`` satellites
nearest the region at t = 0, kept for the whole mission, the paper's model; or, with
``participants.selection: geometric``, any satellite whose sensor footprint covers the
target at some sample, taking part in the captures it can make), each observation round:

1. capture: the slot's patch of the round's overlapping draw (the overlap protocol of the
   ``rd`` kind over ``data.scenes``, seeded by the scenario seed and the round);
2. analysis transform + Recognizer + Selector — real, timed;
3. send the real signature bytes to every peer as flows whose delays come from
   EdgeSpaceCom's routing at that instant (:func:`edgespacecom.sync.compute_sync_rounds`
   on the payload's size); entropy modelling runs meanwhile (real, timed);
4. wait for every peer's signatures, at most ``mission.peer_timeout_s``; a peer that has
   not answered is left out of this satellite's view for the round;
5. Arbiter on the view, Filter + entropy coding — real, timed — and the real container
   (``references`` maps, so differing views still decode) goes into on-board storage.

The baseline agent captures the same patch, runs CompressAI's ``compress`` (real, timed)
and stores y and z. A downlink process per slot and world drains storage at x bit/s
during the slot's contact windows (real passes over ``ground.stations`` from Skyfield,
or the paper's abstract N_w windows of τ_w a day), as a fluid: an item may span windows.
The ground decodes each round from the delivered bytes alone, checks it against what the
satellites intended (bit for bit) and measures PSNR and MS-SSIM.

Compute time advances simulated time as ``mission.compute`` says: the measured wall time
of each real step times ``device_factor``, or the paper's TITAN V times of Table 2.

``mission.capture: continuous`` is the paper's production model: each slot captures the
next patch as soon as the previous one is stored, all day. Real work is done for the
first ``mission.rounds`` rounds; later rounds replay them in turn (same bytes, same
measured times; the sync delays are always those of the current instant, and a view
never seen before is arbitrated and coded for real). ``mission.batch`` rounds go in one
agent step to keep the event count small over days of simulated time: the first round of
a batch is simulated event by event (compute, signature flows, waiting for peers) and the
batch's other rounds take the lockstep period of the group at that instant
(:meth:`Mission.steady_round_s`).

Geometric participants (:func:`.run.geometric_captures`): at each ephemeris sample the
satellites whose footprint covers enough of the target (``sensor``) form that capture's
group, N and o_exp come from their footprints (``capture_rounds.csv``), and the round's real
work is drawn for that N and o_exp (rounded to 1/4, so like geometries share real work). A
capture with one participant is coded by the codec alone in both worlds.

Losses (``mission.losses``): a stream may be lost (a seeded draw per satellite and step, the
same in both worlds) and a satellite may fail at a set time, losing what it holds. The ground
decodes each round from what arrived once the rest is known lost; positions copied from a lost
stream take the model's prediction (:func:`..dlrc.reconstructor.reconstruct` with
``lost='predict'``) and the round counts as degraded.

The module is split by concern: :mod:`.compute` (how compute time advances simulated
time), :mod:`.onboard` (the real DLRC and baseline work of each round), :mod:`.agents`
(storage, signature flows, the SimPy agents and the downlink), :mod:`.ground` (contact
plans, delivered volume), :mod:`.summary` (G_down, figures, the printed table) and
:mod:`.run` (the runner of the ``mission`` kind), :mod:`.decodable` (when each patch becomes
decodable) and :mod:`.compare` (Figure A2, the paper's model next to the realistic one).

Its schema is :mod:`.config` (torch-free: validating a scenario imports nothing else here). A new
priority policy goes in :meth:`.agents.Mission.priority_order` and the ``dlrc.priority`` literal of
:mod:`dlrc_agents.common.config`.
"""
