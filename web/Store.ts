/**
 * Conversations and settings in the browser's localStorage: they survive reloads and restarts
 * of the browser and never leave it (the server keeps no conversation).
 */

export type Mode = "chat" | "completion" | "json"

export interface ToolCallView {
  readonly name: string
  readonly arguments: string
}

export interface Stats {
  readonly completionTokens?: number
  readonly promptTokens?: number
  readonly firstTokenMs?: number
  readonly tokensPerSecond?: number
  readonly finishReason?: string
}

export interface Message {
  readonly role: "user" | "assistant"
  content: string
  mode: Mode
  reasoning?: string
  toolCalls?: Array<ToolCallView>
  stats?: Stats
  error?: string
  stopped?: boolean
}

export interface Conversation {
  readonly id: string
  title: string
  model: string
  messages: Array<Message>
  updated: number
}

export interface Settings {
  mode: Mode
  system: string
  schema: string
  tools: string
  toolChoice: string
  temperature: string
  topP: string
  maxTokens: string
  seed: string
}

export const defaultSettings: Settings = {
  mode: "chat",
  system: "",
  schema:
    "{\n  \"type\": \"object\",\n  \"properties\": { \"answer\": { \"type\": \"string\" } },\n  \"required\": [\"answer\"]\n}",
  tools: "",
  toolChoice: "auto",
  temperature: "0.8",
  topP: "0.95",
  maxTokens: "256",
  seed: ""
}

const CONVERSATIONS = "shimmy.conversations"
const CURRENT = "shimmy.currentConversation"
const SETTINGS = "shimmy.settings"
const THEME = "shimmy.theme"

const read = <A>(key: string, fallback: A): A => {
  try {
    const text = localStorage.getItem(key)
    return text === null ? fallback : (JSON.parse(text) as A)
  } catch {
    return fallback
  }
}

const write = (key: string, value: unknown) => {
  try {
    localStorage.setItem(key, JSON.stringify(value))
  } catch {
    // storage full or refused: the page goes on without keeping it
  }
}

export const loadConversations = (): Array<Conversation> => {
  const list = read<unknown>(CONVERSATIONS, [])
  return Array.isArray(list)
    ? list.filter((c): c is Conversation => typeof c?.id === "string" && Array.isArray(c?.messages))
    : []
}
export const saveConversations = (list: ReadonlyArray<Conversation>) => write(CONVERSATIONS, list)
export const loadCurrent = (): string | null => read<string | null>(CURRENT, null)
export const saveCurrent = (id: string) => write(CURRENT, id)
export const loadSettings = (): Settings => ({ ...defaultSettings, ...read<Partial<Settings>>(SETTINGS, {}) })
export const saveSettings = (settings: Settings) => write(SETTINGS, settings)
export const loadTheme = (): "light" | "dark" | null => read<"light" | "dark" | null>(THEME, null)
export const saveTheme = (theme: "light" | "dark") => write(THEME, theme)

export const newConversation = (model: string): Conversation => ({
  // not crypto.randomUUID: it exists only in secure contexts, and http://<LAN address> is not one
  id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`,
  title: "New conversation",
  model,
  messages: [],
  updated: Date.now()
})
