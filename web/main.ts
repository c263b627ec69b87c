import { ApiError, type ModelEntry, models as listModels, onKeyNeeded } from "./Api.js"
import { bodyFor, generate, InvalidSettings } from "./Generate.js"
import {
  type Conversation,
  loadConversations,
  loadCurrent,
  loadSettings,
  loadTheme,
  type Message,
  newConversation,
  saveConversations,
  saveCurrent,
  saveSettings,
  saveTheme,
  type Settings
} from "./Store.js"
import { byId, drawMessage, element } from "./View.js"

/**
 * The playground's page: the models, the conversations (kept in this browser), the settings, and
 * one answer streamed at a time, which Stop (or Escape) cancels.
 */

const ui = {
  status: byId<HTMLSpanElement>("status"),
  theme: byId<HTMLButtonElement>("theme"),
  newConversation: byId<HTMLButtonElement>("new-conversation"),
  conversations: byId<HTMLUListElement>("conversations"),
  model: byId<HTMLSelectElement>("model"),
  modelInfo: byId<HTMLDListElement>("model-info"),
  messages: byId<HTMLDivElement>("messages"),
  error: byId<HTMLParagraphElement>("error"),
  prompt: byId<HTMLTextAreaElement>("prompt"),
  send: byId<HTMLButtonElement>("send"),
  stop: byId<HTMLButtonElement>("stop"),
  keyDialog: byId<HTMLDialogElement>("key-dialog"),
  keyReason: byId<HTMLParagraphElement>("key-reason"),
  keyInput: byId<HTMLInputElement>("api-key"),
  keySave: byId<HTMLButtonElement>("key-save"),
  keyCancel: byId<HTMLButtonElement>("key-cancel")
}

/** Each setting's control, by the field it keeps. */
const settingInputs: Record<keyof Settings, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> = {
  mode: byId("mode"),
  system: byId("system"),
  schema: byId("schema"),
  tools: byId("tools"),
  toolChoice: byId("tool-choice"),
  temperature: byId("temperature"),
  topP: byId("top-p"),
  maxTokens: byId("max-tokens"),
  seed: byId("seed")
}

const settings: Settings = loadSettings()
let conversations: Array<Conversation> = loadConversations()
let current: Conversation | undefined
let available: ReadonlyArray<ModelEntry> = []
let inFlight: AbortController | undefined

const showError = (message: string | undefined) => {
  ui.error.hidden = message === undefined
  ui.error.textContent = message ?? ""
}

// ---- theme

const applyTheme = (theme: "light" | "dark") => {
  document.documentElement.dataset["theme"] = theme
  ui.theme.setAttribute("aria-pressed", String(theme === "dark"))
  ui.theme.textContent = theme === "dark" ? "Light theme" : "Dark theme"
}
applyTheme(loadTheme() ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"))
ui.theme.addEventListener("click", () => {
  const next = document.documentElement.dataset["theme"] === "dark" ? "light" : "dark"
  applyTheme(next)
  saveTheme(next)
})

// ---- settings

const showModeFields = () => {
  for (const block of document.querySelectorAll<HTMLElement>("[data-modes]")) {
    block.hidden = !(block.dataset["modes"] ?? "").split(" ").includes(settings.mode)
  }
}
for (const [field, input] of Object.entries(settingInputs) as Array<[keyof Settings, HTMLInputElement]>) {
  input.value = settings[field]
  input.addEventListener("input", () => {
    ;(settings as unknown as Record<string, string>)[field] = input.value
    saveSettings(settings)
    if (field === "mode") showModeFields()
  })
}
showModeFields()

// ---- the API key

onKeyNeeded((reason) =>
  new Promise((resolve) => {
    ui.keyReason.textContent = reason
    ui.keyInput.value = ""
    const done = (key: string | null) => {
      ui.keySave.removeEventListener("click", save)
      ui.keyInput.removeEventListener("keydown", enter)
      ui.keyDialog.removeEventListener("close", cancel)
      if (ui.keyDialog.open) ui.keyDialog.close()
      resolve(key)
    }
    const save = () => {
      const key = ui.keyInput.value.trim()
      if (key.length > 0) done(key)
    }
    const enter = (e: KeyboardEvent) => {
      if (e.key === "Enter") {
        e.preventDefault()
        save()
      }
    }
    const cancel = () => done(null)
    ui.keySave.addEventListener("click", save)
    ui.keyInput.addEventListener("keydown", enter)
    ui.keyDialog.addEventListener("close", cancel)
    ui.keyDialog.showModal()
    ui.keyInput.focus()
  })
)
ui.keyCancel.addEventListener("click", () => ui.keyDialog.close())

// ---- models

const describe = (m: ModelEntry): ReadonlyArray<[string, string]> =>
  [
    ["Status", m.status + (m.reason !== undefined ? ` (${m.reason})` : "") + (m.loaded ? ", loaded" : "")],
    ["Size", m.size],
    ["Architecture", m.architecture],
    ["Parameters", m.parameters !== null ? m.parameters.toLocaleString("en") : null],
    ["Quantization", m.quantization],
    ["Context", m.context_length !== null ? `${m.context_length.toLocaleString("en")} tokens` : null]
  ].filter((row): row is [string, string] => row[1] !== null)

const showModelInfo = () => {
  const m = available.find((m) => m.id === ui.model.value)
  ui.modelInfo.replaceChildren(
    ...(m === undefined
      ? []
      : describe(m).flatMap(([k, v]) => [element("dt", { text: k }), element("dd", { text: v })]))
  )
}

const loadModels = async () => {
  ui.status.textContent = "Loading models…"
  try {
    available = await listModels()
    ui.model.replaceChildren(...available.map((m) => {
      const option = element("option", { text: m.name === m.id ? m.id : `${m.name} (${m.id})` })
      option.value = m.id
      option.disabled = m.status === "unusable"
      return option
    }))
    const wanted = current?.model
    const usable = available.filter((m) => m.status !== "unusable")
    ui.model.value = usable.find((m) => m.id === wanted)?.id ?? usable[0]?.id ?? ""
    ui.status.textContent = available.length === 0
      ? "No models found: start the server with --model-path"
      : `${available.length} model${available.length === 1 ? "" : "s"}`
    showModelInfo()
  } catch (e) {
    ui.status.textContent = "No models"
    showError(`Could not list the models: ${(e as Error).message}`)
  }
}
ui.model.addEventListener("change", () => {
  showModelInfo()
  if (current !== undefined) {
    current.model = ui.model.value
    saveConversations(conversations)
  }
})

// ---- conversations

const drawConversations = () => {
  ui.conversations.replaceChildren(...conversations.map((c) => {
    const open = element("button", { className: "plain", text: c.title })
    open.type = "button"
    open.setAttribute("aria-current", String(c.id === current?.id))
    open.addEventListener("click", () => select(c))
    const remove = element("button", { className: "plain", text: "×" })
    remove.type = "button"
    remove.setAttribute("aria-label", `Delete conversation: ${c.title}`)
    remove.addEventListener("click", () => {
      conversations = conversations.filter((x) => x.id !== c.id)
      saveConversations(conversations)
      if (current?.id === c.id) select(conversations[0])
      else drawConversations()
    })
    return element("li", {}, [open, remove])
  }))
}

const drawMessages = () => {
  const messages = current?.messages ?? []
  ui.messages.replaceChildren(
    ...(messages.length === 0
      ? [element("p", { className: "empty", text: "Pick a model and write a message." })]
      : messages.map((m) => drawMessage(m, m.error !== undefined ? "error" : m.stopped === true ? "stopped" : "done")))
  )
  ui.messages.scrollTop = ui.messages.scrollHeight
}

/** Shows `conversation` (none: an empty page, whose first message starts one). */
function select(conversation: Conversation | undefined) {
  inFlight?.abort()
  current = conversation
  if (conversation !== undefined) {
    saveCurrent(conversation.id)
    if (available.some((m) => m.id === conversation.model)) ui.model.value = conversation.model
    showModelInfo()
  }
  drawConversations()
  drawMessages()
}

ui.newConversation.addEventListener("click", () => {
  select(undefined)
  ui.prompt.focus()
})

// ---- sending

const setBusy = (busy: boolean) => {
  ui.send.disabled = busy
  ui.stop.disabled = !busy
}

const send = async () => {
  const text = ui.prompt.value
  if (inFlight !== undefined || text.trim() === "") return
  showError(undefined)
  if (ui.model.value === "") {
    showError("No model to answer: none was found, or the list could not be loaded.")
    return
  }
  if (current === undefined) {
    current = newConversation(ui.model.value)
    conversations.unshift(current)
    saveCurrent(current.id)
  }
  const conversation = current
  conversation.model = ui.model.value
  const question: Message = { role: "user", content: text, mode: settings.mode }
  let target: ReturnType<typeof bodyFor>
  try {
    target = bodyFor(conversation.model, settings, [...conversation.messages, question])
  } catch (e) {
    showError((e as Error).message)
    return
  }
  conversation.messages.push(question)
  if (conversation.title === "New conversation") conversation.title = text.trim().slice(0, 48)
  conversation.updated = Date.now()
  ui.prompt.value = ""
  const answer: Message = { role: "assistant", content: "", mode: settings.mode }
  conversation.messages.push(answer)
  saveConversations(conversations)
  drawConversations()
  drawMessages()
  const article = ui.messages.lastElementChild as HTMLElement
  drawMessage(answer, "streaming", article)

  const controller = new AbortController()
  inFlight = controller
  setBusy(true)
  try {
    answer.stats = await generate(target, controller.signal, (progress) => {
      answer.content = progress.content
      answer.reasoning = progress.reasoning
      answer.toolCalls = [...progress.toolCalls]
      drawMessage(answer, "streaming", article)
      ui.messages.scrollTop = ui.messages.scrollHeight
    })
    drawMessage(answer, "done", article)
  } catch (e) {
    if (controller.signal.aborted) {
      answer.stopped = true
      drawMessage(answer, "stopped", article)
    } else {
      const message = e instanceof ApiError || e instanceof InvalidSettings || e instanceof Error
        ? e.message
        : String(e)
      answer.error = message
      drawMessage(answer, "error", article)
      showError(message)
    }
  } finally {
    inFlight = undefined
    setBusy(false)
    saveConversations(conversations)
  }
}

const stop = () => inFlight?.abort()

ui.send.addEventListener("click", () => void send())
ui.stop.addEventListener("click", stop)
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault()
    void send()
  } else if (e.key === "Escape" && inFlight !== undefined) {
    e.preventDefault()
    stop()
  }
})

// ---- start

const saved = loadCurrent()
select(conversations.find((c) => c.id === saved) ?? conversations[0])
void loadModels().then(() => {
  if (current !== undefined && available.some((m) => m.id === current?.model)) ui.model.value = current.model
  showModelInfo()
})
