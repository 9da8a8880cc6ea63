#include "rauhad/server/container_service.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <tuple>

#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauha-common/utf8.h"
#include "rauhad/container/log_reader.h"
#include "rauhad/server/admit.h"
#include "rauhad/server/input_pump.h"
#include "rauhad/server/status.h"
#include "rauhad/shim_client.h"

namespace rauha {

namespace cpb = rauha::container::v1;
using container::ContainerView;

namespace {

void FillInfo(const ContainerView& v, cpb::ContainerInfo* info) {
  const auto& c = v.c;
  info->set_id(c.id);
  info->set_name(c.name);
  info->set_zone_id(c.zone_id);
  info->set_zone_name(c.zone_name);
  info->set_image(c.image);
  info->set_state(v.state);
  info->set_pid(static_cast<uint32_t>(c.pid));
  info->set_created_at(c.created_at);
  info->set_started_at(c.started_at);
  if (c.exit_code) info->set_exit_code(*c.exit_code);
  info->set_finished_at(c.finished_at);
  for (const auto& a : c.command) info->add_command(ToValidUtf8(a));
  info->set_image_digest(c.image_digest);
  info->set_tty(c.tty);
  info->set_open_stdin(c.open_stdin);
  info->set_auto_remove(c.auto_remove);
  for (const auto& p : c.exposed_ports) info->add_exposed_ports(p);
}

container::CreateRequest CreateRequestOf(const cpb::CreateContainerRequest& req) {
  container::CreateRequest r;
  r.zone_name = req.zone_name();
  r.name = req.name();
  r.image = req.image();
  r.command.assign(req.command().begin(), req.command().end());
  r.env.insert(req.env().begin(), req.env().end());
  r.working_dir = req.working_dir();
  r.tty = req.tty();
  r.open_stdin = req.open_stdin();
  r.auto_remove = req.auto_remove();
  return r;
}

}  // namespace

grpc::Status ContainerServiceImpl::CreateContainer(grpc::ServerContext*,
                                                   const cpb::CreateContainerRequest* req,
                                                   cpb::CreateContainerResponse* resp) {
  auto created = containers_->Create(CreateRequestOf(*req));
  if (!created.ok()) return ToGrpc(created.status());
  resp->set_container_id(created->c.id);
  resp->set_name(created->c.name);
  resp->set_state(created->state);
  return grpc::Status::OK;
}

grpc::Status ContainerServiceImpl::StartContainer(grpc::ServerContext*,
                                                  const cpb::StartContainerRequest* req,
                                                  cpb::StartContainerResponse*) {
  return ToGrpc(containers_->Start(req->container_id()));
}

grpc::Status ContainerServiceImpl::StopContainer(grpc::ServerContext*,
                                                 const cpb::StopContainerRequest* req,
                                                 cpb::StopContainerResponse*) {
  return ToGrpc(containers_->Stop(req->container_id(), req->timeout_seconds()));
}

grpc::Status ContainerServiceImpl::KillContainer(grpc::ServerContext*,
                                                 const cpb::KillContainerRequest* req,
                                                 cpb::KillContainerResponse*) {
  return ToGrpc(
      containers_->Kill(req->container_id(), req->signal() == 0 ? SIGKILL : req->signal()));
}

grpc::Status ContainerServiceImpl::DeleteContainer(grpc::ServerContext*,
                                                   const cpb::DeleteContainerRequest* req,
                                                   cpb::DeleteContainerResponse*) {
  return ToGrpc(containers_->Delete(req->container_id(), req->force()));
}

grpc::Status ContainerServiceImpl::GetContainer(grpc::ServerContext*,
                                                const cpb::GetContainerRequest* req,
                                                cpb::GetContainerResponse* resp) {
  auto v = containers_->Get(req->container_id());
  if (!v.ok()) return ToGrpc(v.status());
  FillInfo(*v, resp->mutable_container());
  return grpc::Status::OK;
}

grpc::Status ContainerServiceImpl::ListContainers(grpc::ServerContext*,
                                                  const cpb::ListContainersRequest* req,
                                                  cpb::ListContainersResponse* resp) {
  auto all = containers_->List(req->zone_name());
  if (!all.ok()) return ToGrpc(all.status());
  for (const auto& v : *all) FillInfo(v, resp->add_containers());
  return grpc::Status::OK;
}

grpc::Status ContainerServiceImpl::ContainerLogs(
    grpc::ServerContext* ctx, const cpb::ContainerLogsRequest* req,
    grpc::ServerWriter<cpb::ContainerLogEntry>* writer) {
  auto dir = containers_->LogDir(req->container_id());
  if (!dir.ok()) return ToGrpc(dir.status());
  container::LogQuery query;
  query.tail = req->tail();
  query.follow = req->follow();
  for (auto [field, text, out] : {std::tuple{"since", &req->since(), &query.since_ns},
                                  std::tuple{"until", &req->until(), &query.until_ns}}) {
    if (text->empty()) continue;
    *out = NanosFromRfc3339(*text);
    if (*out < 0) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          StrCat(field, " \"", ToValidUtf8(*text),
                 "\" is not an RFC 3339 time in UTC such as 2026-11-30T16:20:28.000000000Z"));
    }
  }
  CallGate::Slot slot;
  std::unique_ptr<container::LogFollow> follow;
  if (req->follow()) {
    auto admitted = Admit(stream_calls_, ctx);
    if (!admitted.ok()) return ToGrpc(admitted.status());
    slot = *std::move(admitted);
    auto registered = containers_->FollowLog(req->container_id(), req->wait_for_start());
    if (!registered.ok()) return ToGrpc(registered.status());
    follow = *std::move(registered);
    query.more_may_come = [&] { return follow->MoreMayCome(); };
    query.wait_for_change = [&](int ms) { follow->WaitForChange(ms); };
    // The follow is in place: a client waiting for this may start the container now.
    writer->SendInitialMetadata();
  }
  auto st = container::ReadContainerLog(
      *dir, query, [ctx] { return ctx->IsCancelled(); },
      [&](const container::LogLine& l) {
        cpb::ContainerLogEntry e;
        e.set_source(l.is_stderr ? "stderr" : "stdout");
        // A proto3 string must be UTF-8; the bytes of other output are shown replaced.
        e.set_line(IsValidUtf8(l.text) ? l.text : ToValidUtf8(l.text));
        e.set_timestamp(l.timestamp);
        return writer->Write(e);
      });
  return ToGrpc(st);
}

grpc::Status ContainerServiceImpl::WaitContainer(grpc::ServerContext* ctx,
                                                 const cpb::WaitContainerRequest* req,
                                                 cpb::WaitContainerResponse* resp) {
  auto slot = Admit(stream_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  auto ended = containers_->Wait(req->container_id(), [ctx] { return ctx->IsCancelled(); });
  if (!ended.ok()) return ToGrpc(ended.status());
  resp->set_exit_code(ended->exit_code);
  resp->set_finished_at(ended->finished_at);
  resp->set_removed(ended->removed);
  return grpc::Status::OK;
}

grpc::Status ContainerServiceImpl::ExecInContainer(grpc::ServerContext* ctx,
                                                   const cpb::ExecInContainerRequest* req,
                                                   cpb::ExecInContainerResponse* resp) {
  auto slot = Admit(stream_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  container::ExecRequest r;
  r.command.assign(req->command().begin(), req->command().end());
  r.env.insert(req->env().begin(), req->env().end());
  auto result = containers_->RunExec(req->container_id(), r, [ctx] { return ctx->IsCancelled(); });
  if (!result.ok()) return ToGrpc(result.status());
  resp->set_exit_code(result->exit_code.value_or(255));
  resp->set_stdout(result->stdout_data);
  resp->set_stderr(result->start_error.empty() ? result->stderr_data : result->start_error + "\n");
  return grpc::Status::OK;
}

grpc::Status ContainerServiceImpl::ExecStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<cpb::ExecStreamResponse, cpb::ExecStreamRequest>* stream) {
  cpb::ExecStreamRequest first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.has_start()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message of ExecStream must be start");
  }
  auto slot = Admit(stream_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  const auto& start = first.start();
  container::ExecRequest r;
  r.command.assign(start.command().begin(), start.command().end());
  r.env.insert(start.env().begin(), start.env().end());
  r.tty = start.tty();
  r.stdin_pipe = true;
  r.paced = true;  // a client that reads slowly slows the process down; nothing is dropped
  auto exec = containers_->StartExec(start.container_id(), r);
  if (!exec.ok()) return ToGrpc(exec.status());
  ShimClient shim(exec->shim_socket);
  std::mutex write_mu;
  shim::TaskResult result;
  absl::Status waited;
  {
    InputPump<cpb::ExecStreamRequest> pump(
        stream,
        [&](const std::string& data, bool eof) { (void)shim.Stdin(exec->task_id, data, eof); },
        [&](uint32_t rows, uint32_t cols) { (void)shim.Resize(exec->task_id, rows, cols); });
    auto r2 = exec->stream->Wait(
        exec->task_id,
        [&](bool is_stderr, std::string_view data) {
          cpb::ExecStreamResponse out;
          if (is_stderr) {
            out.set_stderr_data(std::string(data));
          } else {
            out.set_stdout_data(std::string(data));
          }
          std::lock_guard lock(write_mu);
          stream->Write(out);
        },
        nullptr, [ctx] { return ctx->IsCancelled(); });
    if (r2.ok()) {
      result = *r2;
      cpb::ExecStreamResponse end;
      if (!result.start_error.empty()) {
        end.set_stderr_data(result.start_error + "\n");
        stream->Write(end);
      }
      end.set_exit_code(!result.start_error.empty() ? 127
                        : result.exit_code          ? *result.exit_code
                        : result.signal             ? 128 + *result.signal
                                                    : 255);
      stream->Write(end);
    }
    waited = r2.status();
    EndInput(ctx, pump);
  }
  containers_->FinishExec(*exec);
  return ToGrpc(waited);
}

grpc::Status ContainerServiceImpl::RunContainer(
    grpc::ServerContext* ctx, const cpb::RunContainerRequest* req,
    grpc::ServerWriter<cpb::RunContainerResponse>* writer) {
  return ToGrpc(RunContainer(ControlOf(ctx), *req, [writer](const cpb::RunContainerResponse& m) {
    return writer->Write(m);
  }));
}

absl::Status ContainerServiceImpl::RunContainer(
    const CallControl& call, const cpb::RunContainerRequest& req,
    const std::function<bool(const cpb::RunContainerResponse&)>& write) {
  auto slot = Admit(stream_calls_, call);
  if (!slot.ok()) return slot.status();
  auto gone = [&call] { return call.cancelled && call.cancelled(); };
  // The records of the create and the start wait for one fsync: the exit's (RecordExit, or
  // the auto-removal's) makes them durable with its own, before the exit code goes out.
  audit::Recorder::Batch audit_batch(containers_->recorder());
  auto created = containers_->Create(CreateRequestOf(req.create()));
  if (!created.ok()) return created.status();
  SpanTrace::MarkCurrent("create");
  const std::string id = created->c.id;
  const bool auto_remove = created->c.auto_remove;
  // Subscribed before the start: all of its output, from the first byte.
  auto sub = containers_->Attach(id);
  if (!sub.ok()) return sub.status();
  cpb::RunContainerResponse named;
  named.set_container_id(id);
  absl::Status started = write(named)
                             ? containers_->Start(id)
                             : absl::CancelledError("the client went away before the start");
  SpanTrace::MarkCurrent("start");
  if (!started.ok()) {
    containers_->Detach(id, *sub);
    // Never started: it would stay Created (an exit is what removes an auto_remove one).
    if (auto_remove || absl::IsCancelled(started)) (void)containers_->Delete(id, true);
    return started;
  }
  bool client_gone = false;
  while (!client_gone) {
    if (gone()) {
      client_gone = true;
      break;
    }
    auto chunk = (*sub)->Next(100);
    if (chunk) {
      cpb::RunContainerResponse out;
      if (chunk->is_stderr) {
        out.set_stderr_data(std::move(chunk->data));
      } else {
        out.set_stdout_data(std::move(chunk->data));
      }
      client_gone = !write(out);
      continue;
    }
    if ((*sub)->ended()) break;
  }
  containers_->Detach(id, *sub);
  SpanTrace::MarkCurrent("output_ended");
  // The container runs on (and is removed at its exit with auto_remove), as when the client
  // of a follow or an attach goes away.
  if (client_gone) return absl::CancelledError("the client went away");
  int exit_code = (*sub)->exit_code().value_or(255);
  if (auto_remove) {
    // docker run --rm returns once the container is gone.
    auto ended = containers_->Wait(id, gone);
    if (!ended.ok()) return ended.status();
    exit_code = ended->exit_code;
    SpanTrace::MarkCurrent("removed");
  }
  // This call's records (create, start; usually made durable already with the exit's).
  if (auto* recorder = containers_->recorder()) recorder->FlushThisThread();
  SpanTrace::MarkCurrent("flushed");
  cpb::RunContainerResponse end;
  end.set_exit_code(exit_code);
  write(end);
  SpanTrace::MarkCurrent("answered");
  return absl::OkStatus();
}

grpc::Status ContainerServiceImpl::Attach(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<cpb::AttachResponse, cpb::AttachRequest>* stream) {
  cpb::AttachRequest first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.has_start()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message of Attach must be start");
  }
  auto slot = Admit(stream_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());
  const std::string id = first.start().container_id();
  auto sub = containers_->Attach(id);
  if (!sub.ok()) return ToGrpc(sub.status());
  if (first.start().rows() != 0 && first.start().cols() != 0) {
    (void)containers_->Resize(id, first.start().rows(), first.start().cols());
  }
  // An empty first message: the attach is in place, so a client that starts the container
  // now misses none of its output.
  stream->Write(cpb::AttachResponse());
  {
    InputPump<cpb::AttachRequest> pump(
        stream,
        [&](const std::string& data, bool eof) {
          // Input for a container without an open stdin is dropped: attaching still shows
          // its output.
          if (!data.empty() || eof) (void)containers_->WriteStdin(id, data, eof);
        },
        [&](uint32_t rows, uint32_t cols) { (void)containers_->Resize(id, rows, cols); });
    while (!ctx->IsCancelled()) {
      auto chunk = (*sub)->Next(100);
      if (chunk) {
        cpb::AttachResponse out;
        out.set_stdout_data(std::move(chunk->data));
        if (!stream->Write(out)) break;
        continue;
      }
      if ((*sub)->ended()) {
        cpb::AttachResponse end;
        end.set_exit_code((*sub)->exit_code().value_or(255));
        stream->Write(end);
        break;
      }
    }
    EndInput(ctx, pump);
  }
  containers_->Detach(id, *sub);
  return grpc::Status::OK;
}

}  // namespace rauha
