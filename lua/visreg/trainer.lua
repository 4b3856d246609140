-- visreg.trainer: trains a recipe. Multi-view batches from the C loader go through the encoder
-- and the projector; the recipe's objective (visreg.loss) trains both; an online linear probe
-- learns on detached encoder features. Schedules set any scalar of the recipe at every step.
--
-- The run folder holds recipe.lua (the recipe's source), recipe.json (resolved), run.json,
-- metrics.jsonl (step and epoch lines), checkpoint.safetensors (model, optimizers, RNG, loader
-- position, recipe) and summary.json (linear_probe, knn, train_seconds, epochs,
-- images_per_second). A resumed run continues bit for bit where the checkpoint left off; Ctrl-C
-- saves a checkpoint and stops cleanly.
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local random = require "visreg.random"
local util = require "visreg.util"
local recipe_mod = require "visreg.recipe"
local schedule = require "visreg.schedule"
local lossm = require "visreg.loss"
local optim = require "visreg.optim"
local data = require "visreg.data"
local augment = require "visreg.augment"
local checkpoint = require "visreg.checkpoint"
local probe = require "visreg.probe"
local metrics = require "visreg.metrics"
local nn = require "visreg.nn"
local tdist = require "visreg.trainer_dist"
local C = core.C

local M = {}

local CKPT = "checkpoint.safetensors"
local FORMAT = "visreg-checkpoint-1"

---------------------------------------------------------------- output
local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", math.floor(s / 3600), math.floor(s / 60) % 60, s % 60) end
  return string.format("%02d:%02d", math.floor(s / 60), s % 60)
end
M.fmt_time = fmt_time

local Progress = {}
Progress.__index = Progress
local function progress(mode, quiet)
  local tty = C.vr_host_isatty(1) ~= 0
  if mode == "bar" then tty = true elseif mode == "plain" or mode == false then tty = false end
  return setmetatable({ tty = tty and not quiet, quiet = quiet, last = "" }, Progress)
end
function Progress:line(s)
  if self.quiet then return end
  if self.tty and self.last ~= "" then io.stdout:write("\r\27[K") end
  io.stdout:write(s, "\n")
  io.stdout:flush()
  self.last = ""
end
function Progress:bar(epoch, epochs, i, n, info, eta)
  if not self.tty then return end
  local width = 24
  local fill = math.floor(width * i / math.max(1, n))
  local s = string.format("\r\27[Kepoch %d/%d [%s%s] %d/%d %s ETA %s", epoch, epochs, string.rep("#", fill),
    string.rep("-", width - fill), i, n, info, fmt_time(eta))
  io.stdout:write(s)
  io.stdout:flush()
  self.last = s
end
function Progress:finish()
  if self.tty and self.last ~= "" then io.stdout:write("\r\27[K"); io.stdout:flush() end
  self.last = ""
end

---------------------------------------------------------------- the model
local function build_model(r, device)
  random.manual_seed(r.seed, 0)
  local a, b = recipe_mod.model_builder(r.model)()
  local enc, proj = a, b
  if type(a) == "table" and not a.forward and (a.encoder or a[1]) then enc, proj = a.encoder or a[1], a.projector or a[2] end
  if type(enc) ~= "table" or not enc.forward then util.error("recipe.model: expected it to return an encoder module, got %s", type(enc)) end
  proj = proj or nn.Identity()
  if not enc.out_dim then util.error("recipe.model: the encoder has no out_dim (the size of its features)") end
  -- memory_format = "channels_last": the encoder's activations [N, H, W, C] (the projector is an MLP)
  if r.memory_format and r.memory_format ~= "contiguous" then
    if type(enc.to_memory_format) ~= "function" then
      util.error("recipe.memory_format = %s: the encoder is not an nn.Module (no to_memory_format)", r.memory_format)
    end
    local ok, e = pcall(enc.to_memory_format, enc, r.memory_format)
    if not ok then util.error("recipe.memory_format = %s: %s", r.memory_format, tostring(e)) end
  end
  enc:to(device)
  proj:to(device)
  return enc, proj
end

local function named_params(enc, proj)
  local out = {}
  for _, e in ipairs(enc:named_parameters()) do out[#out + 1] = { "encoder." .. e[1], e[2], e[3] } end
  for _, e in ipairs(proj:named_parameters()) do out[#out + 1] = { "projector." .. e[1], e[2], e[3] } end
  return out
end

local function state_tensors(modules)
  local out = {}
  for prefix, m in pairs(modules) do
    for name, t in pairs(m:state_dict()) do out[prefix .. "." .. name] = t end
  end
  return out
end

---------------------------------------------------------------- the run
-- Trainer state: everything a checkpoint restores besides the tensors.
local function new_state() return { epoch = 0, batch_index = 0, step = 0, train_seconds = 0, images = 0 } end

-- open(r, opts) -> the trainer table (data, model, optimizers), ready to run or evaluate
function M.setup(r, opts)
  opts = opts or {}
  local self = { r = r, opts = opts, state = new_state() }
  if r.threads and r.threads > 0 then C.vr_set_num_threads(r.threads) end
  local dev = opts.device or r.device
  self.device = core.device_names[tonumber(core.device(dev))]
  if self.device == "cuda" and C.vr_cuda_available() == 0 then
    util.error("device cuda: no GPU is available (%s)", C.vr_cuda_compiled() ~= 0 and "none found" or "built without CUDA")
  end
  tdist.setup(self) -- self.rank; NCCL for CUDA tensors on several ranks
  local on = r.loader.augment_on or "auto"
  self.augment_on = on == "auto" and (self.device == "cuda" and "device" or "cpu") or on
  -- precision = "bf16": the encoder and projector forward run under autocast (their matmuls and
  -- convolutions in bf16 with f32 accumulation; parameters, norms, losses, optimizer state f32)
  self.autocast = r.precision == "bf16" and "bf16" or nil
  if self.device == "cuda" and r.cudnn_benchmark then C.vr_cuda_set_conv_benchmark(1) end
  self.ds = data.open(r.data)
  local train = self.ds.train
  self.channels, self.height, self.width = train:channels(), train:height(), train:width()
  self.num_classes = math.max(train:num_classes(), self.ds.test:num_classes())
  self.enc, self.proj = build_model(r, self.device)
  tdist.sync_bn(self) -- recipe dist.sync_bn on several ranks
  if self.num_classes > 0 and r.eval.online_probe then
    random.manual_seed(r.seed, 1)
    self.head = nn.Linear(self.enc.out_dim, self.num_classes, { device = self.device })
  end
  self.objective = lossm.build(r.loss)
  self.opt = optim.build(r.optim, named_params(self.enc, self.proj))
  if self.head then
    local ps = optim.adamw { lr = r.eval.probe_lr, weight_decay = 0 }
    self.probe_opt = optim.build(ps, self.head:named_parameters())
  end
  random.manual_seed(r.seed, 2) -- the stream for dropout and anything drawn during training
  return self
end

-- augment_on "device": the loader hands out raw u8 batches and the views are made on the training
-- device (self.view_specs: each view's pipeline and size), the same views as the loader makes
local function make_loader(self)
  local r = self.r
  local raw = self.augment_on == "device"
  local l = data.loader(self.ds.train, { batch = r.batch, shuffle = true, drop_last = true, seed = r.seed,
    workers = r.loader.workers, prefetch = r.loader.prefetch, raw = raw })
  tdist.shard(l) -- several ranks: this rank's part of every global batch
  local g, lo = r.views.global, r.views["local"]
  self.view_specs = raw and {} or nil
  local function add(group, n)
    local size = group.size or { self.height, self.width }
    local spec = raw and { pipeline = augment.build(group.pipeline), size = size }
    for _ = 1, n do
      if raw then self.view_specs[#self.view_specs + 1] = spec else l:add_view(size, group.pipeline) end
    end
  end
  add(g, g.n)
  if lo then add(lo, lo.n) end
  if l:num_batches() < 1 then
    util.error("data: %d training images make no batch of %d (lower batch or raise data.subset)", self.ds.train:count(), r.batch)
  end
  return l
end

-- views first..first+n-1 of a batch as n x B x C x H x W: the loader's, or made on the device from
-- raw = {images, ids} (the batch's u8 images and sample ids, copied to the device once per batch)
local function batch_views(self, batch, first, n, raw)
  if not raw then return batch:views(first, n) end
  local list = {}
  for v = first, first + n - 1 do
    local s = self.view_specs[v + 1]
    list[#list + 1] = augment.apply(s.pipeline, raw.images,
      { size = s.size, seed = self.r.seed, epoch = batch:epoch(), view = v, ids = raw.ids })
  end
  return tensor.stack(list, 0)
end

---------------------------------------------------------------- checkpoints
function M.save(self, path)
  local st = self.state
  local tensors = state_tensors { encoder = self.enc, projector = self.proj }
  if self.head then
    for k, v in pairs(self.head:state_dict()) do tensors["probe." .. k] = v end
  end
  local ot, om = self.opt:state_dict("optim.")
  for k, v in pairs(ot) do tensors[k] = v end
  local pm
  if self.probe_opt then
    local pt
    pt, pm = self.probe_opt:state_dict("probe_optim.")
    for k, v in pairs(pt) do tensors[k] = v end
  end
  local meta = {
    format = FORMAT,
    state = util.json_encode { epoch = st.epoch, batch_index = st.batch_index, step = st.step,
      train_seconds = st.train_seconds, images = st.images, optim = om, probe_optim = pm, epoch_sums = self.epoch_sums,
      generator = random.default():state(), version = require("visreg").version },
    recipe = recipe_mod.to_json(self.r),
    recipe_source = self.opts.source or "",
    recipe_path = self.opts.recipe_path or "",
    overrides = util.json_encode(self.opts.overrides or {}),
  }
  checkpoint.save(path, tensors, meta)
end

-- the checkpoint's state (JSON), its numbers checked: nil and the problem when one is wrong
local function read_state(text)
  local ok, st = pcall(util.json_decode, text or "")
  if not ok or type(st) ~= "table" then return nil, "its state is not a JSON object" end
  local count = { int = true, min = 0 }
  for _, k in ipairs { "epoch", "batch_index", "step", "images" } do
    local p = util.rule_problem(st[k], count)
    if p then return nil, "state." .. k .. ": " .. p end
  end
  local p = util.rule_problem(st.train_seconds, { min = 0 })
  if p then return nil, "state.train_seconds: " .. p end
  local g = st.generator
  if type(g) ~= "table" then return nil, "state.generator: expected {seed, stream, offset}, got " .. util.show_value(g) end
  for _, k in ipairs { "seed", "stream", "offset" } do
    p = util.rule_problem(g[k] or 0, count)
    if p then return nil, "state.generator." .. k .. ": " .. p end
  end
  if st.epoch_sums ~= nil then
    if type(st.epoch_sums) ~= "table" then return nil, "state.epoch_sums: expected a table" end
    for _, k in ipairs { "loss_sum", "n_loss", "correct", "seen" } do
      p = util.rule_problem(st.epoch_sums[k], k == "loss_sum" and {} or count)
      if p then return nil, "state.epoch_sums." .. k .. ": " .. p end
    end
  end
  for _, k in ipairs { "optim", "probe_optim" } do
    if st[k] ~= nil and type(st[k]) ~= "table" then return nil, "state." .. k .. ": expected a table" end
  end
  return st
end

-- Restores a checkpoint's model, optimizers, RNG and position. Only data is read from it: every
-- tensor must have the dtype and shape of the model's own (a tensor relabelled with another dtype
-- is refused, naming it, never reinterpreted), and the state's numbers are checked.
function M.restore(self, path)
  local tensors, meta = checkpoint.load(path)
  if meta.format ~= FORMAT then util.error("%s: not a visreg checkpoint (format %s)", path, tostring(meta.format)) end
  local st, why = read_state(meta.state)
  if not st then util.error("%s: %s", path, why) end
  local ok, err = pcall(function()
    self.enc:load_state_dict(checkpoint.with_prefix(tensors, "encoder."), true, "encoder.")
    self.proj:load_state_dict(checkpoint.with_prefix(tensors, "projector."), true, "projector.")
    if self.head then self.head:load_state_dict(checkpoint.with_prefix(tensors, "probe."), true, "probe.") end
    self.opt:load_state_dict(tensors, st.optim or {}, "optim.")
    if self.probe_opt and st.probe_optim then self.probe_opt:load_state_dict(tensors, st.probe_optim, "probe_optim.") end
  end)
  if not ok then error(string.format("%s: %s", path, (tostring(err):gsub("^.-:%d+: ", ""))), 0) end
  random.default():set_state(st.generator)
  self.state = { epoch = st.epoch, batch_index = st.batch_index, step = st.step, train_seconds = st.train_seconds,
    images = st.images }
  -- the interrupted epoch's loss and probe sums (fit goes on from them; the probe's on rank 0)
  self.epoch_sums = tdist.resumed_sums(self, st.epoch_sums)
  return meta
end

---------------------------------------------------------------- training
local function append_line(f, t)
  if f then f:write(util.json_encode(t), "\n"); f:flush() end
end

local function scalar(t) return t and t:item() end

-- the message of a run whose loss stopped being a number: the step, the learning rate, the fix
local function diverged(r, step, value)
  return string.format("loss became %s at step %d (lr %g): lower optim.lr%s", value, step, r.optim.lr,
    (r.schedule.lr or r.schedule["optim.lr"]) and " or its schedule" or "")
end

local function nonfinite(x) return x ~= x or x == math.huge or x == -math.huge end
local function num_name(x) return x ~= x and "nan" or (x > 0 and "inf" or "-inf") end

-- the error handler of fit: the message, with a traceback under VISREG_TRACEBACK
local function with_traceback(e)
  if type(e) == "string" and os.getenv("VISREG_TRACEBACK") and not e:find("stack traceback:", 1, true) then
    return debug.traceback(e, 2)
  end
  return e
end

local fit_epochs

-- runs the remaining epochs; returns "done", "interrupted" or "paused" (opts.stop_at_epoch). The
-- loader's workers are stopped on every way out, an error included.
function M.fit(self)
  local loader = make_loader(self)
  self.loader = loader
  local ok, res = xpcall(fit_epochs, with_traceback, self, loader)
  loader:close()
  if self.metrics_file then
    pcall(self.metrics_file.close, self.metrics_file) -- closed already on the normal ways out
    self.metrics_file = nil
  end
  if not ok then error(res, 0) end
  return res
end

function fit_epochs(self, loader)
  local r, st, opts = self.r, self.state, self.opts
  local steps_per_epoch = loader:num_batches()
  local sctx = { steps_per_epoch = steps_per_epoch, total_steps = steps_per_epoch * r.epochs, epochs = r.epochs }
  local bases, rules = {}, {}
  for key in pairs(r.schedule) do
    local path = schedule.resolve_key(key)
    bases[path] = recipe_mod.get(r, path)
    rules[path] = recipe_mod.rule_for(r, path) or {} -- {}: a finite number
  end
  local G = r.views.global.n
  local Lv = r.views["local"] and r.views["local"].n or 0
  local V = G + Lv
  local B = r.batch
  local Bl = tdist.local_batch(B) -- this rank's part of the batch
  local objective = tdist.global_objective(self.objective, tdist.slice_mode(r))
  local out = opts.out
  local mf = out and io.open(out .. "/metrics.jsonl", "a")
  self.metrics_file = mf
  local prog = progress(r.log.progress, opts.quiet)
  local log_every = math.max(1, r.log.every)
  local enc, proj, head = self.enc, self.proj, self.head
  enc:train(); proj:train()
  if head then head:train() end

  -- a scheduled value keeps its key's rule (a bound may be reached: a learning rate decayed to 0)
  local function apply_schedules(epoch)
    for key, s in pairs(r.schedule) do
      local path = schedule.resolve_key(key)
      local v = schedule.value(s, bases[path], epoch, st.step, sctx)
      local p = util.rule_problem(v, rules[path], true)
      if p then
        error(string.format("schedule['%s'] at epoch %d, step %d: %s: %s", tostring(key), epoch, st.step, path, p), 0)
      end
      recipe_mod.set(r, path, v)
    end
  end

  local function encode(x, n) -- n x B x C x H x W -> embeddings n x B x D, features (first view)
    local s = x:shape()
    x = x:reshape(s[1] * s[2], s[3], s[4], s[5])
    if self.device ~= "cpu" then x = x:to(self.device) end
    local h, z
    if self.autocast then -- the loss, regularizer and probe head stay outside, in f32
      h, z = tensor.autocast(self.autocast, function() local f = enc(x); return f, proj(f) end)
      -- a convolutional encoder ends in bf16 (autocast keeps conv activations bf16)
      if h:dtype() ~= "f32" then h = h:to("f32") end
      if z:dtype() ~= "f32" then z = z:to("f32") end
    else
      h = enc(x)
      z = proj(h)
    end
    return z:view(n, s[2], -1), h
  end

  while st.epoch < r.epochs do
    local epoch = st.epoch
    if loader:epoch() ~= epoch or loader:batch_index() ~= st.batch_index then loader:set_position(epoch, st.batch_index) end
    local t_epoch = core.now()
    local t_log, img_log = t_epoch, 0
    local sum_loss, n_loss = nil, 0
    local correct, seen = nil, 0
    local n_here = 0 -- steps run in this process (the epoch's throughput)
    -- a run resumed mid-epoch starts from the epoch's sums so far, so that its epoch line covers the
    -- whole epoch: the same f32 values, added in the same order as an uninterrupted run
    local acc = self.epoch_sums
    self.epoch_sums = nil
    if acc and st.batch_index > 0 then
      local o = { dtype = "f32", device = self.device }
      sum_loss, n_loss = acc.n_loss > 0 and tensor.scalar(acc.loss_sum, o) or nil, acc.n_loss
      correct, seen = acc.seen > 0 and tensor.scalar(acc.correct, o) or nil, acc.seen
    end
    local last_z, last_info = nil, ""
    local stopping -- "interrupted" or "stopped" on the epoch's last step: its line is still written
    while true do
      local t0 = core.now()
      local batch = loader:next()
      if not batch then break end
      apply_schedules(epoch)
      local raw = self.view_specs and { images = batch:images():to(self.device), ids = batch:indices():to(self.device) }
      local zg, h = encode(batch_views(self, batch, 0, G, raw), G)
      local z = zg
      if Lv > 0 then
        local zl = encode(batch_views(self, batch, G, Lv, raw), Lv)
        z = tensor.cat({ zg, zl }, 0)
      end
      -- a diverged model's embeddings are not numbers any more: the regularizer refuses them
      local okl, loss, terms = xpcall(objective, with_traceback, z, { seed = r.seed, step = st.step, global_views = G })
      if not okl then
        local msg = tostring(loss)
        if C.vr_last_status() == C.VR_E_VALUE and msg:find("expected finite values", 1, true) then
          error(diverged(r, st.step + 1, (msg:match("got %-?(%a+)") or "nan"):lower()), 0)
        end
        error(loss, 0)
      end
      local total = loss
      local probe_loss, labels
      if head then
        labels = batch:labels()
        local dev_labels = self.device ~= "cpu" and labels:to(self.device) or labels
        local feats = h:narrow(0, 0, Bl):detach()
        local logits = head(feats)
        probe_loss = lossm.cross_entropy(logits, dev_labels)
        total = loss + probe_loss
        -- accuracy counted where the logits are: no host synchronisation in the step (read once an epoch)
        local c = tensor.no_grad(function() return logits:detach():argmax(1):eq(dev_labels):to("f32"):sum() end)
        correct = correct and correct + c or c
        seen = seen + Bl
      end
      self.opt:zero_grad()
      if self.probe_opt then self.probe_opt:zero_grad() end
      total:backward()
      tdist.sync_grads { enc, proj, head } -- several ranks: the mean of their gradients
      local grad_norm = self.opt:step()
      if self.probe_opt then self.probe_opt:step() end
      local ld = loss:detach()
      sum_loss = sum_loss and sum_loss + ld or ld
      n_loss = n_loss + 1
      n_here = n_here + 1
      last_z = zg
      batch:free()
      st.step = st.step + 1
      st.batch_index = st.batch_index + 1
      st.images = st.images + B * V
      img_log = img_log + B * V
      st.train_seconds = st.train_seconds + (core.now() - t0)
      if opts.on_step then opts.on_step(self, t0) end -- bench train's clock (M.bench)

      local last_of_epoch = st.batch_index == steps_per_epoch
      if st.step % log_every == 0 or last_of_epoch then
        local now = core.now()
        local line = { type = "step", epoch = epoch, step = st.step, loss = loss:item(), lr = r.optim.lr,
          lambda = r.loss.lambda, images_per_second = img_log / math.max(1e-9, now - t_log),
          grad_norm = tensor.is_tensor(grad_norm) and grad_norm:item() or grad_norm } -- read only at log steps
        if nonfinite(line.loss) then error(diverged(r, st.step, num_name(line.loss)), 0) end
        for k, v in pairs(terms) do line[k] = scalar(v) end
        if probe_loss then line.probe_loss = tdist.mean(probe_loss:item()) end -- over every rank's samples
        append_line(mf, line)
        t_log, img_log = now, 0
        last_info = string.format("loss %.4f lr %.2e %.0f img/s", line.loss, line.lr, line.images_per_second)
        if not prog.tty then
          prog:line(string.format("epoch %d/%d step %d/%d %s", epoch + 1, r.epochs, st.batch_index, steps_per_epoch, last_info))
        end
      end
      local per_step = (core.now() - t_epoch) / math.max(1, n_here)
      local eta = per_step * ((steps_per_epoch - st.batch_index) + steps_per_epoch * (r.epochs - epoch - 1))
      prog:bar(epoch + 1, r.epochs, st.batch_index, steps_per_epoch, last_info, eta)

      local interrupted = tdist.any(C.vr_host_interrupted() ~= 0)
      if interrupted or (opts.stop_at_step and st.step >= opts.stop_at_step) then
        if last_of_epoch then -- the epoch's line, then the checkpoint (below)
          stopping = interrupted and "interrupted" or "stopped"
          break
        end
        self.epoch_sums = { loss_sum = sum_loss and sum_loss:item() or 0, n_loss = n_loss,
          correct = correct and correct:item() or 0, seen = seen }
        tdist.total_sums(self.epoch_sums) -- the probe's counts over every rank
        if out then M.save(self, out .. "/" .. CKPT) end
        self.epoch_sums = nil
        prog:finish()
        if interrupted then
          C.vr_host_clear_interrupt()
          prog:line(string.format("interrupted at epoch %d step %d: checkpoint saved; resume with --resume %s",
            epoch + 1, st.step, out or "(no --out)"))
        end
        if mf then mf:close() end
        return "interrupted"
      end
    end
    -- end of epoch
    prog:finish()
    local zl = last_z:select(0, 0):detach()
    local eline = { type = "epoch", epoch = epoch, step = st.step, loss = sum_loss and sum_loss:item() / n_loss,
      lr = r.optim.lr, lambda = r.loss.lambda, seconds = core.now() - t_epoch,
      images_per_second = n_here * B * V / math.max(1e-9, core.now() - t_epoch),
      embedding_std = metrics.embedding_std(zl), effective_rank = metrics.effective_rank(zl) }
    if correct then eline.online_probe = tdist.ratio(correct, seen) end
    append_line(mf, eline)
    self.last_epoch = eline
    prog:line(string.format("epoch %d/%d loss %.4f%s std %.3f rank %.1f %.0f img/s %s", epoch + 1, r.epochs, eline.loss or 0,
      eline.online_probe and string.format(" online-probe %.2f%%", 100 * eline.online_probe) or "", eline.embedding_std,
      eline.effective_rank or 0, eline.images_per_second, fmt_time(eline.seconds)))
    st.epoch, st.batch_index = epoch + 1, 0
    if stopping then
      if out then M.save(self, out .. "/" .. CKPT) end
      if stopping == "interrupted" then
        C.vr_host_clear_interrupt()
        prog:line(string.format("interrupted at the end of epoch %d (step %d): checkpoint saved; resume with --resume %s",
          epoch + 1, st.step, out or "(no --out)"))
      end
      if mf then mf:close() end
      return "interrupted"
    end
    local every = r.checkpoint.every
    -- opts.stop_at_epoch: a pause (the sweep's successive halving compares trials at an epoch)
    local pause = opts.stop_at_epoch and st.epoch >= opts.stop_at_epoch and st.epoch < r.epochs
    if out and ((every > 0 and st.epoch % every == 0) or st.epoch == r.epochs or pause) then M.save(self, out .. "/" .. CKPT) end
    require("visreg.report.hook").epoch(self) -- the run's page (protected: a failure only warns)
    if pause then
      if mf then mf:close() end
      return "paused"
    end
  end
  if mf then mf:close() end
  return "done"
end

---------------------------------------------------------------- evaluation
-- linear probe and kNN on frozen encoder features of the train and test splits
function M.evaluate(self, o)
  o = o or {}
  local r = self.r
  local ev = r.eval
  local res = {}
  if not (ev.linear_probe or ev.knn) then return res end
  if self.num_classes == 0 then return res end
  local g = r.views.global
  local size = g.size
  if size and type(size) == "number" and size == self.height and size == self.width then size = nil end
  local pipeline = augment.eval_pipeline(g.pipeline, size)
  local t0 = core.now()
  local fo = { pipeline = pipeline, batch = ev.batch, device = self.device }
  local ftr = probe.features(self.enc, self.ds.train, fo)
  local fte = probe.features(self.enc, self.ds.test, fo)
  local ytr, yte = self.ds.train:labels(), self.ds.test:labels()
  if ev.linear_probe then
    local pred
    res.linear_probe, pred = probe.linear_probe(ftr, ytr, fte, yte, { num_classes = self.num_classes,
      l2 = ev.probe_l2, max_iter = ev.probe_iters, predictions = ev.shot_groups })
    -- eval.shot_groups: the probe's accuracy on many/medium/few-shot classes (visreg.shot_groups)
    if pred then require("visreg.shot_groups").add_to(res, pred, yte, self.ds.train, self.num_classes) end
  end
  if ev.knn then
    local k = type(ev.knn) == "table" and ev.knn or {}
    res.knn, self.knn_predictions = probe.knn(ftr, ytr, fte, yte, { num_classes = self.num_classes, k = k.k or 20, T = k.T or 0.07,
      predictions = true }) -- each test image's class, for the report's per-class accuracy and confusion
  end
  res.eval_seconds = core.now() - t0
  self.eval_features = { train = ftr, test = fte, train_labels = ytr, test_labels = yte } -- for the report's analysis
  return res
end

---------------------------------------------------------------- bench train
-- bench(r, opts): `visreg bench train`. Builds the run as train does (setup) and runs fit for
-- opts.warmup (default 2) steps, then opts.steps (default 10) timed ones: each step from the
-- loader's next batch to the end of the optimizer step, the device synchronised before the clock
-- is read. No run folder, no logging, no evaluation. Returns { steps, warmup, median_s, mean_s,
-- images_per_step (B x views, as the trainer counts), images_per_second (from the median),
-- mean_images_per_second, device, threads, batch, views, step_seconds (the list) }.
function M.bench(r, opts)
  opts = opts or {}
  local warm, n = math.max(0, math.floor(opts.warmup or 2)), math.max(1, math.floor(opts.steps or 10))
  r.log.every = warm + n + 1
  r.log.progress = "plain"
  local self = M.setup(r, { device = opts.device, quiet = true })
  local per_epoch = math.floor(self.ds.train:count() / r.batch)
  if per_epoch < 1 then util.error("data: %d training images make no batch of %d", self.ds.train:count(), r.batch) end
  r.epochs = math.max(r.epochs, math.ceil((warm + n) / per_epoch)) -- schedules then see a longer run
  -- On CUDA the timed window is measured as a whole (a sync at each end) so that the host queues
  -- the next step while the device runs this one, as in training; opts.sync_steps syncs after
  -- every step instead and gives a median. On the CPU each step is timed.
  local times, k = {}, 0
  local cuda = self.device ~= "cpu"
  local whole = cuda and not opts.sync_steps
  local t_start, window
  local function sync() if cuda then core.check(C.vr_cuda_synchronize()) end end
  if warm == 0 then sync(); C.vr_profile_reset(); t_start = core.now() end
  self.opts = { quiet = true, stop_at_step = warm + n, on_step = function(_, t0)
    k = k + 1
    if whole then
      if k == warm or k == warm + n then sync() end
      if k == warm then t_start = core.now() end
      if k == warm + n then window = core.now() - t_start end
    else
      sync()
      if k > warm then times[#times + 1] = core.now() - t0 end
    end
    if k == warm then C.vr_profile_reset() end -- VISREG_PROFILE=1: count the timed steps only
  end }
  M.fit(self)
  if self.loader then self.loader:close() end
  if whole then for i = 1, n do times[i] = window / n end end
  local sorted, sum = {}, 0
  for i, t in ipairs(times) do sorted[i] = t; sum = sum + t end
  table.sort(sorted)
  local m = #sorted
  local median = m % 2 == 1 and sorted[(m + 1) / 2] or 0.5 * (sorted[m / 2] + sorted[m / 2 + 1])
  local V = r.views.global.n + (r.views["local"] and r.views["local"].n or 0)
  local ips = r.batch * V
  return { recipe = r.name, steps = m, warmup = warm, median_s = median, mean_s = sum / m, images_per_step = ips,
    images_per_second = ips / median, mean_images_per_second = ips * m / sum, device = self.device,
    threads = C.vr_num_threads(), batch = r.batch, views = V, step_seconds = times, whole_window = whole }
end

---------------------------------------------------------------- the run folder
-- What a run writes in its folder. A folder holding one of RUN_MARKERS holds a run; other files
-- (a sweep's trial.json and train.log, the user's own) are left where they are.
local RUN_FILES = { CKPT, "metrics.jsonl", "summary.json", "recipe.lua", "recipe.json", "run.json", "eval.json" }
local RUN_MARKERS = { CKPT, "metrics.jsonl", "summary.json", "recipe.lua", "run.json" }
M.run_files = RUN_FILES

local function present(dir, names)
  local out = {}
  for _, f in ipairs(names) do
    if util.file_exists(dir .. "/" .. f) then out[#out + 1] = f end
  end
  return out
end

-- removes what interrupted writes of the run's own files left behind (NAME.tmp, NAME.tmp.PID)
local function clean_stale(dir)
  local own = {}
  for _, f in ipairs(RUN_FILES) do own[f] = true end
  for _, name in ipairs(util.list_dir(dir)) do
    local base = name:match("^(.-)%.tmp$") or name:match("^(.-)%.tmp%.%d+$")
    if base and own[base] then os.remove(dir .. "/" .. name) end
  end
end

-- moves files of dir into a new dir/replaced-YYYYmmdd-HHMMSS/ (never into an existing one)
local function move_aside(dir, names)
  local stamp = os.date("%Y%m%d-%H%M%S")
  local dest, k = dir .. "/replaced-" .. stamp, 1
  while util.file_exists(dest) or util.is_dir(dest) do
    k = k + 1
    dest = string.format("%s/replaced-%s-%d", dir, stamp, k)
  end
  util.mkdir_p(dest)
  for _, f in ipairs(names) do util.rename(dir .. "/" .. f, dest .. "/" .. f) end
  return dest
end

-- Keeps the lines of metrics.jsonl up to step (a resumed checkpoint's): those a crashed run logged
-- past its last checkpoint, and a line cut short, are dropped, through a temporary file and a
-- rename. Returns the number of lines dropped.
function M.truncate_metrics(dir, step)
  local path = dir .. "/metrics.jsonl"
  local f = io.open(path, "rb")
  if not f then return 0 end
  local keep, dropped = {}, 0
  for line in f:lines() do
    local ok, j = pcall(util.json_decode, line)
    if ok and type(j) == "table" and (type(j.step) ~= "number" or j.step <= step) then
      keep[#keep + 1] = line
    else
      dropped = dropped + 1
    end
  end
  f:close()
  if dropped > 0 then util.write_file(path, table.concat(keep, "\n") .. (#keep > 0 and "\n" or "")) end
  return dropped
end

local function norm_dir(p) return (p:gsub("/+$", ""):gsub("^%./", "")) end

---------------------------------------------------------------- the command
-- train(r, opts): opts.out (run folder), opts.resume (a run folder or checkpoint to continue),
-- opts.force (a fresh run into a folder that holds one: its files are moved to
-- OUT/replaced-DATE/), opts.device, opts.quiet, opts.source (the recipe's text),
-- opts.recipe_path, opts.overrides, opts.stop_at_step, opts.stop_at_epoch. Returns the summary
-- table (nil when interrupted or paused), the trainer and fit's status.
--
-- The run folder is left as it is until the data, the model and (when resuming) the checkpoint
-- have loaded: a run that fails before then changes nothing there.
function M.train(r, opts)
  opts = tdist.run_opts(opts or {}) -- on ranks other than 0: no run folder, no output
  local out = opts.out and norm_dir(opts.out)
  local ckpt, from
  if opts.resume then
    from = util.is_dir(opts.resume) and norm_dir(opts.resume) or (opts.resume:match("^(.*)/[^/]*$") or ".")
    ckpt = util.is_dir(opts.resume) and (from .. "/" .. CKPT) or opts.resume
    if not util.file_exists(ckpt) then
      error(string.format("--resume %s: no %s to continue from", opts.resume, ckpt), 0)
    end
  end
  -- resuming in the checkpoint's own folder continues that run; another folder starts a new one
  local continuing = ckpt and out and norm_dir(from) == out
  local replace = false
  if out and not continuing then
    local held = present(out, RUN_MARKERS)
    if #held > 0 then
      if not opts.force then
        error(string.format("%s holds a run (%s): continue it with --resume %s, or start a new one there with " ..
          "--force (the old run's files are moved to %s/replaced-DATE/)", out, table.concat(held, ", "), out, out), 0)
      end
      replace = true
    end
  end
  local self = M.setup(r, opts)
  if ckpt then
    M.restore(self, ckpt)
    if not opts.quiet then
      print(string.format("resumed from %s at epoch %d, step %d", ckpt, self.state.epoch + 1, self.state.step))
    end
  end
  if out then -- everything has loaded: the folder changes from here on
    util.mkdir_p(out)
    clean_stale(out)
    if replace then
      local dest = move_aside(out, present(out, RUN_FILES))
      if not opts.quiet then print(string.format("note: the run that was in %s is now in %s", out, dest)) end
    end
    if continuing then
      local n = M.truncate_metrics(out, self.state.step)
      if n > 0 and not opts.quiet then
        print(string.format("note: %d metrics line%s past the checkpoint's step %d dropped", n, n == 1 and "" or "s",
          self.state.step))
      end
    end
    if opts.source then util.write_file(out .. "/recipe.lua", opts.source) end
    util.write_file(out .. "/recipe.json", recipe_mod.to_json(r))
    util.write_file(out .. "/run.json", util.json_encode({ recipe = opts.recipe_path, overrides = opts.overrides or {},
      device = self.device, version = require("visreg").version, threads = C.vr_num_threads(), ranks = self.ranks,
      started = os.date("!%Y-%m-%dT%H:%M:%SZ") }, "  ") .. "\n")
  end
  if not opts.quiet then
    print(string.format("visreg %s: %s on %s (%d threads), %d train / %d test images, %d epochs x %d steps of %d x %d views",
      require("visreg").version, r.name or "recipe", self.device, C.vr_num_threads(), self.ds.train:count(),
      self.ds.test:count(), r.epochs, math.floor(self.ds.train:count() / r.batch), r.batch,
      r.views.global.n + (r.views["local"] and r.views["local"].n or 0)))
    print(string.format("encoder %d parameters, projector %d parameters%s", self.enc:num_parameters(),
      self.proj:num_parameters(), out and (", run folder " .. out) or ""))
  end
  local status = M.fit(self)
  if status ~= "done" then return nil, self, status end
  if self.rank > 0 then return {}, self, status end -- rank 0 evaluates and writes the summary
  local st = self.state
  local summary = { recipe = r.name, epochs = r.epochs, steps = st.step, train_seconds = st.train_seconds,
    images_per_second = st.images / math.max(1e-9, st.train_seconds), device = self.device, threads = C.vr_num_threads() }
  if self.last_epoch then
    summary.final_loss = self.last_epoch.loss
    summary.online_probe = self.last_epoch.online_probe
    summary.effective_rank = self.last_epoch.effective_rank
  end
  -- Ctrl-C during the final evaluation stops it; the last checkpoint is already saved
  local okev, ev = pcall(M.evaluate, self)
  if not okev then
    if not core.is_interrupt(ev) then error(ev, 0) end
    C.vr_interrupt_clear()
    if not opts.quiet then
      print(string.format("interrupted during the final evaluation: the checkpoint is saved; evaluate with visreg eval %s",
        out or "(no --out)"))
    end
    return nil, self, "interrupted"
  end
  for k, v in pairs(ev) do summary[k] = v end
  if out then util.write_file(out .. "/summary.json", util.json_encode(summary, "  ") .. "\n") end
  require("visreg.report.hook").finish(self, summary) -- analysis.json and the finished page (protected)
  if not opts.quiet then
    print(string.format("done: %s%s%strain %s, %.0f img/s", summary.linear_probe and string.format("linear probe %.2f%%, ",
      100 * summary.linear_probe) or "", summary.knn and string.format("kNN %.2f%%, ", 100 * summary.knn) or "",
      summary.online_probe and string.format("online probe %.2f%%, ", 100 * summary.online_probe) or "",
      fmt_time(summary.train_seconds), summary.images_per_second))
  end
  return summary, self
end

return M
