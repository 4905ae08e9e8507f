-- Argo CD health check for identity-operator.io IdentityBackend, IdentityProvider and Application.
--
-- Argo CD runs this with the object as `obj` (gopher-lua, Lua 5.1). Install it in argocd-cm, once
-- per kind (the same script):
--   resource.customizations.health.identity-operator.io_IdentityBackend: |
--     <this file>
--   resource.customizations.health.identity-operator.io_IdentityProvider: |
--     <this file>
--   resource.customizations.health.identity-operator.io_Application: |
--     <this file>
--
-- The operator follows kstatus: status.observedGeneration says which spec the conditions describe;
-- Ready is the summary; Stalled=True means a user must act; Reconciling=True means it retries on
-- its own. Hence:
--   spec not yet observed (observedGeneration != generation)  -> Progressing
--   Ready=True                                                  -> Healthy
--   Ready=False and Stalled=True                                -> Degraded
--   anything else (Reconciling, Ready missing or Unknown)       -> Progressing
-- Tested by tests/argocd_health.rs against sample statuses.

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local hs = {}
local meta = obj.metadata or {}
local status = obj.status

if meta.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator removes the object from the identity server first"
  return hs
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

if meta.generation ~= nil and status.observedGeneration ~= meta.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(meta.generation)
    .. " (observed " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local conflict = condition(status.conditions, "InterconnectionConflict")

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Ready")
  if conflict ~= nil and conflict.status == "True" then
    hs.message = hs.message .. "; InterconnectionConflict: " .. message_of(conflict, conflict.reason or "")
  end
  return hs
end

if ready ~= nil and ready.status == "False" and stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(stalled, message_of(ready, "Stalled"))
  return hs
end

hs.status = "Progressing"
if ready == nil then
  hs.message = "Waiting for the Ready condition"
else
  hs.message = message_of(ready, "Not ready yet")
end
return hs
