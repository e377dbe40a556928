# The senders of one deployment: each third-party system with its own webhook function (its own
# URL), its own Secret Manager secret, its own account, and its own settings, all feeding the one
# requests topic. No resources: the root module (infra/) creates what these names describe. So
# `terraform init` needs no provider here, and tests/test_senders.py evaluates it with
# Terraform itself, offline.
#
# With `senders` empty, the single-sender variables describe one sender named "webhook": its
# function is `<prefix>-webhook` and its secret `<prefix>-webhook-secret`, the names (and the
# root's resource addresses) a deployment made before senders already has, so nothing of it is
# replaced.

variable "name_prefix" {
  type = string
}

variable "senders" {
  type = map(object({
    auth              = optional(string, "standard-webhooks")
    signature_header  = optional(string, "X-Hub-Signature-256")
    token_header      = optional(string, "")
    allowed_origins   = optional(list(string), [])
    tolerance_seconds = optional(number, 300)
    link_mapping      = optional(string, "")
    delivery          = optional(string, "queue")
    tulip_dry_runs    = optional(bool, false)
    public            = optional(bool, true)
    invokers          = optional(list(string), [])
    max_body_bytes    = optional(number, 26214400)
    memory            = optional(string)
  }))
  nullable = false
  default  = {}

  validation {
    condition     = alltrue([for name, _ in var.senders : can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", name)) && length(name) <= 20 && !contains(["events", "build", "invoker"], name)])
    error_message = format("Sender %s: a sender's name goes into resource names and URLs: 1 to 20 lower-case letters, digits and single hyphens, starting with a letter, and not events, build or invoker (names this deployment uses itself).", join(", ", [for name, _ in var.senders : format("%q", name) if !(can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", name)) && length(name) <= 20 && !contains(["events", "build", "invoker"], name))]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : contains(["standard-webhooks", "hmac-sha256", "slack", "stripe", "token", "basic", "none"], s.auth)])
    error_message = format("Sender %s: auth must be one of standard-webhooks, hmac-sha256, slack, stripe, token, basic, none.", join(", ", [for name, s in var.senders : format("%q", name) if !contains(["standard-webhooks", "hmac-sha256", "slack", "stripe", "token", "basic", "none"], s.auth)]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : !(s.public && s.auth == "none")])
    error_message = format("Sender %s: a public webhook (public = true) must authenticate its callers: auth cannot be none.", join(", ", [for name, s in var.senders : format("%q", name) if s.public && s.auth == "none"]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : can(regex("^[A-Za-z0-9-]{1,100}$", s.signature_header))])
    error_message = format("Sender %s: signature_header must be an HTTP header name.", join(", ", [for name, s in var.senders : format("%q", name) if !can(regex("^[A-Za-z0-9-]{1,100}$", s.signature_header))]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : s.token_header == "" || (s.auth == "token" && can(regex("^[A-Za-z0-9-]{1,100}$", s.token_header)))])
    error_message = format("Sender %s: token_header must be an HTTP header name, and is read only with auth = \"token\".", join(", ", [for name, s in var.senders : format("%q", name) if !(s.token_header == "" || (s.auth == "token" && can(regex("^[A-Za-z0-9-]{1,100}$", s.token_header))))]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : alltrue([for o in s.allowed_origins : o == "*" || can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$", lower(o)))])])
    error_message = format("Sender %s: each of allowed_origins must be a host name (eventgrid.azure.net, a SAP Event Mesh host), or \"*\" for any.", join(", ", [for name, s in var.senders : format("%q", name) if !alltrue([for o in s.allowed_origins : o == "*" || can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$", lower(o)))])]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : s.tolerance_seconds >= 1 && s.tolerance_seconds <= 86400])
    error_message = format("Sender %s: tolerance_seconds must be between 1 and 86400.", join(", ", [for name, s in var.senders : format("%q", name) if !(s.tolerance_seconds >= 1 && s.tolerance_seconds <= 86400)]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : s.link_mapping == "" || can(keys(jsondecode(s.link_mapping))) || can(concat(jsondecode(s.link_mapping), []))])
    error_message = format("Sender %s: link_mapping must be empty, or a JSON object or array (the function checks its keys and expressions when it starts).", join(", ", [for name, s in var.senders : format("%q", name) if !(s.link_mapping == "" || can(keys(jsondecode(s.link_mapping))) || can(concat(jsondecode(s.link_mapping), [])))]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : contains(["queue", "direct"], s.delivery)])
    error_message = format("Sender %s: delivery must be queue or direct.", join(", ", [for name, s in var.senders : format("%q", name) if !contains(["queue", "direct"], s.delivery)]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : s.max_body_bytes >= 1024 && s.max_body_bytes <= 33554432])
    error_message = format("Sender %s: max_body_bytes must be between 1024 and 33554432 (32 MiB, Cloud Run's largest request).", join(", ", [for name, s in var.senders : format("%q", name) if !(s.max_body_bytes >= 1024 && s.max_body_bytes <= 33554432)]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : s.memory == null || can(regex("^[0-9]+(Mi|Gi|M|G)$", s.memory))])
    error_message = format("Sender %s: memory must look like 512Mi or 1Gi (or be left out: sized from max_body_bytes).", join(", ", [for name, s in var.senders : format("%q", name) if !(s.memory == null || can(regex("^[0-9]+(Mi|Gi|M|G)$", s.memory)))]))
  }
  validation {
    condition     = alltrue([for _, s in var.senders : alltrue([for m in s.invokers : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])])
    error_message = format("Sender %s: each of invokers must be an IAM member such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com.", join(", ", [for name, s in var.senders : format("%q", name) if !alltrue([for m in s.invokers : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])]))
  }
}

# The one sender of a deployment that sets no `senders`, from the single-sender variables (the
# root validates each of them).
variable "single" {
  type = object({
    auth              = string
    signature_header  = string
    token_header      = string
    allowed_origins   = list(string)
    tolerance_seconds = number
    link_mapping      = string
    delivery          = string
    tulip_dry_runs    = bool
    public            = bool
    invokers          = list(string)
    max_body_bytes    = number
    memory            = optional(string)
  })
}

# The memory of the events function: the least a webhook function gets.
variable "memory" {
  type = string
}

# Requests one instance serves at once: that many bodies can be in memory together.
variable "concurrency" {
  type = number
}

locals {
  senders = length(var.senders) > 0 ? var.senders : { webhook = var.single }

  # What a body costs (docs/performance.md, "Bodies and memory"): an idle instance holds about
  # 130 MiB (make bench), and a body in flight up to 5.7 times its size at its peak (read whole,
  # joined, parsed: python -m devtools.bench.bodies). Both rounded up, for headroom.
  idle_mib            = 160
  bytes_per_body_byte = 6
  mib                 = { Mi = 1, Gi = 1024, M = 1000000 / 1048576, G = 1000000000 / 1048576 }
  # Cloud Run's memory steps up to its largest, 32 GiB.
  steps_mib = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768]

  # Every memory setting given (`memory` and the senders' own), in MiB.
  given_mib = {
    for text in distinct(concat([var.memory], [for s in values(local.senders) : s.memory if s.memory != null])) :
    text => ceil(tonumber(regex("^[0-9]+", text)) * local.mib[regex("[A-Za-z]+$", text)])
  }
  floor_mib = local.given_mib[var.memory]
  needed_mib = {
    for name, s in local.senders : name => local.idle_mib + ceil(local.bytes_per_body_byte * s.max_body_bytes * var.concurrency / 1048576)
  }
  # A sender's own `memory`, else the smallest step that holds its bodies, never below `memory`.
  memory_mib = {
    for name, s in local.senders : name => (
      s.memory != null
      ? local.given_mib[s.memory]
      : min(concat([for step in local.steps_mib : step if step >= max(local.floor_mib, local.needed_mib[name])], [32768])...)
    )
  }
}

output "senders" {
  description = "Each sender's settings, by its name."
  value       = local.senders

  # The one sender's variables are checked one by one at the root; this pair only together
  # (a validation naming another variable needs Terraform 1.9).
  precondition {
    condition     = var.single.token_header == "" || var.single.auth == "token"
    error_message = "webhook_token_header is read only with webhook_auth = \"token\": unset it, or set webhook_auth = \"token\"."
  }
}

output "function_names" {
  description = "Each sender's webhook function (its Cloud Run service and its account): <prefix>-<sender>."
  value       = { for name, _ in local.senders : name => "${var.name_prefix}-${name}" }

  precondition {
    condition     = alltrue([for name, _ in local.senders : length("${var.name_prefix}-${name}") <= 30])
    error_message = format("Sender %s: <name_prefix>-<sender> names the sender's service account, and those take at most 30 characters: shorten the sender's name or name_prefix.", join(", ", [for name, _ in local.senders : format("%q", name) if length("${var.name_prefix}-${name}") > 30]))
  }
}

output "memory" {
  description = "Each sender's webhook function's memory: its own `memory`, else what its max_body_bytes needs at the concurrency."
  value       = { for name, mib in local.memory_mib : name => mib % 1024 == 0 ? "${mib / 1024}Gi" : "${mib}Mi" }

  precondition {
    condition     = alltrue([for name, mib in local.memory_mib : mib >= local.needed_mib[name]])
    error_message = format("Sender %s: memory does not hold max_body_bytes at max_instance_request_concurrency (an idle instance's %d MiB plus %d bytes per byte of each body in flight): raise memory, leave it out to have it sized, or lower max_body_bytes.", join(", ", [for name, mib in local.memory_mib : format("%q (%d MiB, needs %d)", name, mib, local.needed_mib[name]) if mib < local.needed_mib[name]]), local.idle_mib, local.bytes_per_body_byte)
  }
}

output "secret_ids" {
  description = "Each sender's signing secret in Secret Manager, by the root's secret key: <sender>_secret."
  value       = { for name, _ in local.senders : "${name}_secret" => "${var.name_prefix}-${name}-secret" }
}

output "token_readers" {
  description = "The senders whose webhook functions read the Tulip token: those in direct mode (they call Tulip) and those whose dry runs may ask it (tulip_dry_runs). A webhook function in queue mode only queues: a flaw in it, public as it is, cannot reach the token."
  value       = [for name, s in local.senders : name if s.delivery == "direct" || s.tulip_dry_runs]
}

output "secret_readers" {
  description = "Which function's account reads which secret: each sender its own secret, and the Tulip token where token_readers says; the events function the Tulip token only."
  value = merge(
    { for name, s in local.senders : "${name}/tulip_token" => { function = name, secret = "tulip_token" } if s.delivery == "direct" || s.tulip_dry_runs },
    { for name, _ in local.senders : "${name}/${name}_secret" => { function = name, secret = "${name}_secret" } },
    { "events/tulip_token" = { function = "events", secret = "tulip_token" } },
  )
}

output "min_cpu" {
  description = "The fewest vCPUs each function's memory allows, the events function's (memory) included: Cloud Run's memory limits page."
  value = {
    for name, mib in merge(local.memory_mib, { events = local.floor_mib }) : name => (
      mib > 24576 ? 8 : mib > 16384 ? 6 : mib > 8192 ? 4 : mib > 4096 ? 2 : 0
    )
  }
}

output "publishers" {
  description = "The senders in queue mode: their accounts may publish to the requests topic."
  value       = [for name, s in local.senders : name if s.delivery == "queue"]
}

output "public" {
  description = "The senders anyone on the internet may call (allUsers)."
  value       = [for name, s in local.senders : name if s.public]
}

output "invoker_grants" {
  description = "Who may call each private sender's webhook: <sender>/<member> => both."
  value = merge([
    for name, s in local.senders : { for member in s.invokers : "${name}/${member}" => { sender = name, member = member } } if !s.public
  ]...)
}
