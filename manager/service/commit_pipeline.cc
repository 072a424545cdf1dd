#include "manager/service/commit_pipeline.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "control/common/log.h"
#include "manager/service/server_metrics.h"

namespace qos::manager {
namespace {

control::Reply notStored(const std::string& id) {
  control::Reply reply;
  reply.id = id;
  reply.status = control::ReplyStatus::Error;
  reply.error = {"unavailable", "the reservation could not be stored; nothing was reserved"};
  return reply;
}

}  // namespace

CommitPipeline::CommitPipeline(ReservationStore* store, AdmissionEngine& engine,
                               ServerMetrics* metrics, Deliver deliver)
    : store_(store), engine_(engine), metrics_(metrics), deliver_(std::move(deliver)) {
  if (store_ != nullptr) {
    committer_.emplace(*store_);
  }
  in_flight_.replies.reserve(kMaxBatch);
  next_.replies.reserve(kMaxBatch);
}

void CommitPipeline::collect() {
  if (committer_ && committer_->busy()) {
    if (std::optional<BatchCommitter::Outcome> outcome = committer_->collect()) {
      finishInFlight(*outcome);
    }
  }
}

void CommitPipeline::submit() {
  if (next_.empty()) {
    return;
  }
  if (!committer_) {
    deliver_(next_);
    next_.clear();
    return;
  }
  if (committer_->busy()) {
    return;
  }
  ReservationStore::Changes changes = store_->takeStaged();
  if (changes.empty()) {
    deliver_(next_);
    next_.clear();
    return;
  }
  std::swap(in_flight_, next_);
  committer_->submit(std::move(changes));
}

void CommitPipeline::drain() {
  if (committer_ && committer_->busy()) {
    finishInFlight(committer_->wait());
  }
  submit();
  if (committer_ && committer_->busy()) {
    finishInFlight(committer_->wait());
  }
}

void CommitPipeline::finishInFlight(const BatchCommitter::Outcome& outcome) {
  if (metrics_ != nullptr) {
    metrics_->observeCommit(outcome.changes, outcome.seconds);
  }
  if (!outcome.result) {
    takeBack(outcome.result.error());
  }
  deliver_(in_flight_);
  in_flight_.clear();
}

void CommitPipeline::takeBack(const Error& error) {
  log::error("reservation store commit failed: " + error.message);
  std::vector<uint64_t> taken_back;
  for (Outgoing& out : in_flight_.replies) {
    if (out.undo_admission) {
      engine_.release(*out.undo_admission);
      store_->stageDelete(*out.undo_admission);
      taken_back.push_back(*out.undo_admission);
      out.reply = notStored(out.reply.id);
      out.grant_reply.reset();
    }
  }
  // Releases and expiries are gone from the engine already: write them, and
  // tell of them, with the next commit.
  std::vector<FlowEvent> kept;
  for (FlowEvent& event : in_flight_.events) {
    if (event.kind == FlowEvent::Kind::Granted) {
      continue;  // taken back above
    }
    store_->stageDelete(event.grant.flow_id);
    kept.push_back(std::move(event));
  }
  in_flight_.events.clear();
  next_.events.insert(next_.events.begin(), std::make_move_iterator(kept.begin()),
                      std::make_move_iterator(kept.end()));
  for (Outgoing& out : next_.replies) {
    if (out.names_flow &&
        std::find(taken_back.begin(), taken_back.end(), *out.names_flow) != taken_back.end()) {
      out.undo_admission.reset();
      out.reply = notStored(out.reply.id);
      out.grant_reply.reset();
    }
  }
}

}  // namespace qos::manager
