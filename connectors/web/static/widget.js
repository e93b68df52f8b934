/*
 * botkit chat widget. One script tag, no build step, no dependencies:
 *
 *   <script src="https://chat.example.com/widget.js" async
 *           data-site-key="shop" data-title="Chat with us" data-lang="en"
 *           data-theme-color="#2563eb"
 *           data-user-id="42" data-user-hash="<hex HMAC-SHA256(user id, site secret)>">
 *   </script>
 *
 * Safety rule of this file: text that came from the network (bot, agent or visitor) only
 * ever reaches the page through textContent or through elements this file creates (the
 * tiny markdown subset and the quick-reply buttons below). No HTML string is ever parsed,
 * and nothing is evaluated.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__botkitWidgetLoaded) return;
  window.__botkitWidgetLoaded = true;

  var ds = script.dataset;
  // The server is a directory (widget.css and ws sit beside widget.js), so a deployment
  // behind a path prefix (https://shop.example/chat/) works: default = where widget.js is.
  var server = new URL(ds.server || ".", script.src || location.href);
  if (server.pathname.slice(-1) !== "/") server.pathname += "/";
  server.search = "";
  server.hash = "";
  var wsUrl = new URL("ws", server);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var WS_URL = wsUrl.href;
  // ---- the widget's own words -------------------------------------------------------
  // Every word the widget itself shows or says to a screen reader, by language; the
  // conversation is in the visitor's language whatever these say. {name} marks a value
  // filled in; unreadZero/One/Two/Few/Many/Other are the plural forms of Intl.PluralRules
  // (a form a language lacks falls back to unreadOther). A key a language lacks falls back
  // to English, which is written in ASCII (see UTF8 below). A site overrides or adds words
  // with data-texts (docs/web.md).
  var TEXTS = {
    en: {
      title: "Chat",
      open: "Open chat: {title}",
      close: "Close chat: {title}",
      closeButton: "Close chat",
      withUnread: "{label} \u2014 {unread}",
      unreadOne: "{count} new message",
      unreadOther: "{count} new messages",
      messages: "Messages",
      yourMessage: "Your message",
      placeholder: "Type a message\u2026",
      send: "Send",
      attach: "Send a picture or a PDF to the support agent",
      attachTitle: "Send a picture or a PDF",
      you: "You:",
      speaker: "{name}:",
      agent: "Support agent",
      file: "File:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Quick replies",
      notDelivered: "Not delivered",
      tooLong: "Too long: not sent",
      sending: "Sending\u2026",
      waiting: "Not sent yet: waiting for the connection",
      retrying: "Not sent yet: trying again shortly",
      connecting: "Connecting\u2026",
      offline: "Offline. Reconnecting\u2026",
      idle: "Disconnected while idle. Type a message to reconnect.",
      expired: "Your sign-in has expired. Reload the page to keep chatting.",
      unavailable: "Chat is not available on this page.",
      messageTooLong: "This message is too long. Please shorten it.",
      slowDown: "You are sending messages quickly; retrying shortly\u2026",
      notDeliveredYet: "Message not delivered yet; retrying shortly\u2026",
      notSent: "The message could not be sent.",
      fileSending: "Sending {name}\u2026",
      fileRetry: "The file is not sent yet; trying again in {seconds} s\u2026",
      fileTooBigMax: "This file is too big (at most {size}).",
      fileNotSent: "The file was not sent.",
      fileOffline: "The file was not sent: no connection.",
      fileNoAgent: "Files go to a person: ask for one in the chat first.",
      fileTooBig: "This file is too big.",
      fileType: "Only pictures (JPEG, PNG, GIF, WebP) and PDFs can be sent.",
      fileRate: "You are sending files quickly; please wait a moment.",
      fileUploads: "Other files are still being sent; please wait a moment.",
      fileBusy: "The chat is busy; please try again in a moment.",
      fileTimeout: "The file took too long to send; please try again.",
      fileTooSlow: "The connection is too slow to send this file; try a smaller one.",
      fileLimit: "This chat cannot take more files.",
      fileOff: "This chat does not take files.",
    },
    es: {
      title: "Chat",
      open: "Abrir chat: {title}",
      close: "Cerrar chat: {title}",
      closeButton: "Cerrar chat",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} mensaje nuevo",
      unreadMany: "{count} de mensajes nuevos",
      unreadOther: "{count} mensajes nuevos",
      messages: "Mensajes",
      yourMessage: "Tu mensaje",
      placeholder: "Escribe un mensaje…",
      send: "Enviar",
      attach: "Enviar una imagen o un PDF al agente de soporte",
      attachTitle: "Enviar una imagen o un PDF",
      you: "Tú:",
      speaker: "{name}:",
      agent: "Agente de soporte",
      file: "Archivo:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Respuestas rápidas",
      notDelivered: "No entregado",
      tooLong: "Demasiado largo: no enviado",
      sending: "Enviando…",
      waiting: "Aún no enviado: esperando la conexión",
      retrying: "Aún no enviado: se reintentará en breve",
      connecting: "Conectando…",
      offline: "Sin conexión. Reconectando…",
      idle: "Desconectado por inactividad. Escribe un mensaje para volver a conectar.",
      expired: "Tu sesión ha caducado. Recarga la página para seguir chateando.",
      unavailable: "El chat no está disponible en esta página.",
      messageTooLong: "Este mensaje es demasiado largo. Acórtalo, por favor.",
      slowDown: "Estás enviando mensajes muy rápido; se reintentará en breve…",
      notDeliveredYet: "Mensaje aún no entregado; se reintentará en breve…",
      notSent: "No se pudo enviar el mensaje.",
      fileSending: "Enviando {name}…",
      fileRetry: "El archivo aún no se ha enviado; se reintentará en {seconds} s…",
      fileTooBigMax: "Este archivo es demasiado grande (máximo {size}).",
      fileNotSent: "No se envió el archivo.",
      fileOffline: "No se envió el archivo: no hay conexión.",
      fileNoAgent: "Los archivos van a una persona: primero pide en el chat hablar con una.",
      fileTooBig: "Este archivo es demasiado grande.",
      fileType: "Solo se pueden enviar imágenes (JPEG, PNG, GIF, WebP) y PDF.",
      fileRate: "Estás enviando archivos muy rápido; espera un momento.",
      fileUploads: "Aún se están enviando otros archivos; espera un momento.",
      fileBusy: "El chat está ocupado; inténtalo de nuevo en un momento.",
      fileTimeout: "El archivo tardó demasiado en enviarse; inténtalo de nuevo.",
      fileTooSlow: "La conexión es demasiado lenta para enviar este archivo; prueba con uno más pequeño.",
      fileLimit: "Este chat no admite más archivos.",
      fileOff: "Este chat no admite archivos.",
    },
    // French typography: a no-break space before ":" (\u00a0) and a narrow one before
    // ";" (\u202f), so they never start a line.
    fr: {
      title: "Discussion",
      open: "Ouvrir la discussion\u00a0: {title}",
      close: "Fermer la discussion\u00a0: {title}",
      closeButton: "Fermer la discussion",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} nouveau message",
      unreadMany: "{count} de nouveaux messages",
      unreadOther: "{count} nouveaux messages",
      messages: "Messages",
      yourMessage: "Votre message",
      placeholder: "Écrivez un message…",
      send: "Envoyer",
      attach: "Envoyer une image ou un PDF au service client",
      attachTitle: "Envoyer une image ou un PDF",
      you: "Vous\u00a0:",
      speaker: "{name}\u00a0:",
      agent: "Service client",
      file: "Fichier\u00a0:",
      bytes: "{n}\u00a0o",
      kilobytes: "{n}\u00a0Ko",
      megabytes: "{n}\u00a0Mo",
      quickReplies: "Réponses rapides",
      notDelivered: "Non remis",
      tooLong: "Trop long\u00a0: non envoyé",
      sending: "Envoi en cours…",
      waiting: "Pas encore envoyé\u00a0: en attente de connexion",
      retrying: "Pas encore envoyé\u00a0: nouvel essai dans un instant",
      connecting: "Connexion…",
      offline: "Hors ligne. Reconnexion…",
      idle: "Déconnecté pour inactivité. Écrivez un message pour vous reconnecter.",
      expired: "Votre session a expiré. Rechargez la page pour continuer la discussion.",
      unavailable: "La discussion n’est pas disponible sur cette page.",
      messageTooLong: "Ce message est trop long. Veuillez le raccourcir.",
      slowDown: "Vous envoyez des messages trop vite\u202f; nouvel essai dans un instant…",
      notDeliveredYet: "Message pas encore remis\u202f; nouvel essai dans un instant…",
      notSent: "Le message n’a pas pu être envoyé.",
      fileSending: "Envoi de {name}…",
      fileRetry: "Le fichier n’est pas encore envoyé\u202f; nouvel essai dans {seconds}\u00a0s…",
      fileTooBigMax: "Ce fichier est trop volumineux ({size} au maximum).",
      fileNotSent: "Le fichier n’a pas été envoyé.",
      fileOffline: "Le fichier n’a pas été envoyé\u00a0: pas de connexion.",
      fileNoAgent: "Les fichiers vont à un conseiller\u00a0: demandez d’abord à parler à quelqu’un dans la discussion.",
      fileTooBig: "Ce fichier est trop volumineux.",
      fileType: "Seuls les images (JPEG, PNG, GIF, WebP) et les PDF peuvent être envoyés.",
      fileRate: "Vous envoyez des fichiers trop vite\u202f; patientez un instant.",
      fileUploads: "D’autres fichiers sont en cours d’envoi\u202f; patientez un instant.",
      fileBusy: "La discussion est très sollicitée\u202f; réessayez dans un instant.",
      fileTimeout: "L’envoi du fichier a pris trop de temps\u202f; veuillez réessayer.",
      fileTooSlow: "La connexion est trop lente pour ce fichier\u202f; essayez-en un plus petit.",
      fileLimit: "Cette discussion ne peut plus recevoir de fichiers.",
      fileOff: "Cette discussion n’accepte pas de fichiers.",
    },
    de: {
      title: "Chat",
      open: "Chat öffnen: {title}",
      close: "Chat schließen: {title}",
      closeButton: "Chat schließen",
      withUnread: "{label} – {unread}",
      unreadOne: "{count} neue Nachricht",
      unreadOther: "{count} neue Nachrichten",
      messages: "Nachrichten",
      yourMessage: "Ihre Nachricht",
      placeholder: "Nachricht eingeben…",
      send: "Senden",
      attach: "Bild oder PDF an den Kundenservice senden",
      attachTitle: "Bild oder PDF senden",
      you: "Sie:",
      speaker: "{name}:",
      agent: "Kundenservice",
      file: "Datei:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Schnellantworten",
      notDelivered: "Nicht zugestellt",
      tooLong: "Zu lang: nicht gesendet",
      sending: "Wird gesendet…",
      waiting: "Noch nicht gesendet: Warten auf Verbindung",
      retrying: "Noch nicht gesendet: neuer Versuch in Kürze",
      connecting: "Verbindung wird hergestellt…",
      offline: "Offline. Verbindung wird wiederhergestellt…",
      idle: "Wegen Inaktivität getrennt. Schreiben Sie eine Nachricht, um sich wieder zu verbinden.",
      expired: "Ihre Anmeldung ist abgelaufen. Laden Sie die Seite neu, um weiterzuchatten.",
      unavailable: "Der Chat ist auf dieser Seite nicht verfügbar.",
      messageTooLong: "Diese Nachricht ist zu lang. Bitte kürzen Sie sie.",
      slowDown: "Sie senden sehr schnell Nachrichten; neuer Versuch in Kürze…",
      notDeliveredYet: "Nachricht noch nicht zugestellt; neuer Versuch in Kürze…",
      notSent: "Die Nachricht konnte nicht gesendet werden.",
      fileSending: "{name} wird gesendet…",
      fileRetry: "Die Datei ist noch nicht gesendet; neuer Versuch in {seconds} s…",
      fileTooBigMax: "Diese Datei ist zu groß (höchstens {size}).",
      fileNotSent: "Die Datei wurde nicht gesendet.",
      fileOffline: "Die Datei wurde nicht gesendet: keine Verbindung.",
      fileNoAgent: "Dateien gehen an eine Person: Bitten Sie zuerst im Chat darum, mit jemandem zu sprechen.",
      fileTooBig: "Diese Datei ist zu groß.",
      fileType: "Nur Bilder (JPEG, PNG, GIF, WebP) und PDFs können gesendet werden.",
      fileRate: "Sie senden sehr schnell Dateien; bitte warten Sie einen Moment.",
      fileUploads: "Andere Dateien werden noch gesendet; bitte warten Sie einen Moment.",
      fileBusy: "Der Chat ist gerade ausgelastet; bitte versuchen Sie es gleich noch einmal.",
      fileTimeout: "Das Senden der Datei hat zu lange gedauert; bitte versuchen Sie es noch einmal.",
      fileTooSlow: "Die Verbindung ist für diese Datei zu langsam; versuchen Sie es mit einer kleineren.",
      fileLimit: "In diesem Chat können keine weiteren Dateien gesendet werden.",
      fileOff: "In diesem Chat können keine Dateien gesendet werden.",
    },
    // Brazilian Portuguese, the most used; pt-PT visitors get it too (region fallback).
    pt: {
      title: "Chat",
      open: "Abrir chat: {title}",
      close: "Fechar chat: {title}",
      closeButton: "Fechar chat",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} nova mensagem",
      unreadMany: "{count} de novas mensagens",
      unreadOther: "{count} novas mensagens",
      messages: "Mensagens",
      yourMessage: "Sua mensagem",
      placeholder: "Digite uma mensagem…",
      send: "Enviar",
      attach: "Enviar uma imagem ou um PDF ao atendente",
      attachTitle: "Enviar uma imagem ou um PDF",
      you: "Você:",
      speaker: "{name}:",
      agent: "Atendente",
      file: "Arquivo:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Respostas rápidas",
      notDelivered: "Não entregue",
      tooLong: "Longa demais: não enviada",
      sending: "Enviando…",
      waiting: "Ainda não enviada: aguardando a conexão",
      retrying: "Ainda não enviada: nova tentativa em instantes",
      connecting: "Conectando…",
      offline: "Sem conexão. Reconectando…",
      idle: "Desconectado por inatividade. Digite uma mensagem para reconectar.",
      expired: "Seu login expirou. Recarregue a página para continuar conversando.",
      unavailable: "O chat não está disponível nesta página.",
      messageTooLong: "Esta mensagem é longa demais. Encurte-a, por favor.",
      slowDown: "Você está enviando mensagens muito rápido; nova tentativa em instantes…",
      notDeliveredYet: "Mensagem ainda não entregue; nova tentativa em instantes…",
      notSent: "Não foi possível enviar a mensagem.",
      fileSending: "Enviando {name}…",
      fileRetry: "O arquivo ainda não foi enviado; nova tentativa em {seconds} s…",
      fileTooBigMax: "Este arquivo é grande demais (no máximo {size}).",
      fileNotSent: "O arquivo não foi enviado.",
      fileOffline: "O arquivo não foi enviado: sem conexão.",
      fileNoAgent: "Os arquivos vão para um atendente: primeiro peça no chat para falar com um.",
      fileTooBig: "Este arquivo é grande demais.",
      fileType: "Só é possível enviar imagens (JPEG, PNG, GIF, WebP) e PDFs.",
      fileRate: "Você está enviando arquivos muito rápido; aguarde um momento.",
      fileUploads: "Outros arquivos ainda estão sendo enviados; aguarde um momento.",
      fileBusy: "O chat está ocupado; tente novamente em instantes.",
      fileTimeout: "O envio do arquivo demorou demais; tente novamente.",
      fileTooSlow: "A conexão está lenta demais para enviar este arquivo; tente um menor.",
      fileLimit: "Este chat não aceita mais arquivos.",
      fileOff: "Este chat não aceita arquivos.",
    },
    it: {
      title: "Chat",
      open: "Apri la chat: {title}",
      close: "Chiudi la chat: {title}",
      closeButton: "Chiudi la chat",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} nuovo messaggio",
      unreadMany: "{count} di nuovi messaggi",
      unreadOther: "{count} nuovi messaggi",
      messages: "Messaggi",
      yourMessage: "Il tuo messaggio",
      placeholder: "Scrivi un messaggio…",
      send: "Invia",
      attach: "Invia un’immagine o un PDF all’assistenza clienti",
      attachTitle: "Invia un’immagine o un PDF",
      you: "Tu:",
      speaker: "{name}:",
      agent: "Assistenza clienti",
      file: "File:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Risposte rapide",
      notDelivered: "Non consegnato",
      tooLong: "Troppo lungo: non inviato",
      sending: "Invio in corso…",
      waiting: "Non ancora inviato: in attesa della connessione",
      retrying: "Non ancora inviato: nuovo tentativo a breve",
      connecting: "Connessione in corso…",
      offline: "Offline. Riconnessione in corso…",
      idle: "Disconnesso per inattività. Scrivi un messaggio per riconnetterti.",
      expired: "Il tuo accesso è scaduto. Ricarica la pagina per continuare a chattare.",
      unavailable: "La chat non è disponibile su questa pagina.",
      messageTooLong: "Questo messaggio è troppo lungo. Accorcialo, per favore.",
      slowDown: "Stai inviando messaggi troppo velocemente; nuovo tentativo a breve…",
      notDeliveredYet: "Messaggio non ancora consegnato; nuovo tentativo a breve…",
      notSent: "Impossibile inviare il messaggio.",
      fileSending: "Invio di {name}…",
      fileRetry: "Il file non è ancora stato inviato; nuovo tentativo tra {seconds} s…",
      fileTooBigMax: "Questo file è troppo grande (al massimo {size}).",
      fileNotSent: "Il file non è stato inviato.",
      fileOffline: "Il file non è stato inviato: nessuna connessione.",
      fileNoAgent: "I file vanno a una persona: prima chiedi in chat di parlare con un operatore.",
      fileTooBig: "Questo file è troppo grande.",
      fileType: "Si possono inviare solo immagini (JPEG, PNG, GIF, WebP) e PDF.",
      fileRate: "Stai inviando file troppo velocemente; attendi un momento.",
      fileUploads: "Altri file sono ancora in fase di invio; attendi un momento.",
      fileBusy: "La chat è occupata; riprova tra un momento.",
      fileTimeout: "L’invio del file ha richiesto troppo tempo; riprova.",
      fileTooSlow: "La connessione è troppo lenta per inviare questo file; provane uno più piccolo.",
      fileLimit: "Questa chat non accetta altri file.",
      fileOff: "Questa chat non accetta file.",
    },
    nl: {
      title: "Chat",
      open: "Chat openen: {title}",
      close: "Chat sluiten: {title}",
      closeButton: "Chat sluiten",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} nieuw bericht",
      unreadOther: "{count} nieuwe berichten",
      messages: "Berichten",
      yourMessage: "Je bericht",
      placeholder: "Typ een bericht…",
      send: "Versturen",
      attach: "Stuur een afbeelding of pdf naar de klantenservice",
      attachTitle: "Afbeelding of pdf sturen",
      you: "Jij:",
      speaker: "{name}:",
      agent: "Klantenservice",
      file: "Bestand:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Snelle antwoorden",
      notDelivered: "Niet bezorgd",
      tooLong: "Te lang: niet verstuurd",
      sending: "Wordt verstuurd…",
      waiting: "Nog niet verstuurd: wachten op verbinding",
      retrying: "Nog niet verstuurd: zo meteen een nieuwe poging",
      connecting: "Verbinden…",
      offline: "Offline. Opnieuw verbinden…",
      idle: "Verbinding verbroken wegens inactiviteit. Typ een bericht om opnieuw te verbinden.",
      expired: "Je inlog is verlopen. Laad de pagina opnieuw om verder te chatten.",
      unavailable: "De chat is niet beschikbaar op deze pagina.",
      messageTooLong: "Dit bericht is te lang. Maak het korter.",
      slowDown: "Je verstuurt erg snel berichten; zo meteen een nieuwe poging…",
      notDeliveredYet: "Bericht nog niet bezorgd; zo meteen een nieuwe poging…",
      notSent: "Het bericht kon niet worden verstuurd.",
      fileSending: "{name} wordt verstuurd…",
      fileRetry: "Het bestand is nog niet verstuurd; nieuwe poging over {seconds} s…",
      fileTooBigMax: "Dit bestand is te groot (maximaal {size}).",
      fileNotSent: "Het bestand is niet verstuurd.",
      fileOffline: "Het bestand is niet verstuurd: geen verbinding.",
      fileNoAgent: "Bestanden gaan naar een medewerker: vraag eerst in de chat om iemand te spreken.",
      fileTooBig: "Dit bestand is te groot.",
      fileType: "Alleen afbeeldingen (JPEG, PNG, GIF, WebP) en pdf’s kunnen worden verstuurd.",
      fileRate: "Je verstuurt erg snel bestanden; wacht even.",
      fileUploads: "Er worden nog andere bestanden verstuurd; wacht even.",
      fileBusy: "Het is druk in de chat; probeer het zo opnieuw.",
      fileTimeout: "Het versturen van het bestand duurde te lang; probeer het opnieuw.",
      fileTooSlow: "De verbinding is te traag voor dit bestand; probeer een kleiner bestand.",
      fileLimit: "Deze chat kan geen bestanden meer ontvangen.",
      fileOff: "Deze chat ontvangt geen bestanden.",
    },
    // Simplified Chinese: zh, zh-CN, zh-SG, zh-Hans-*.
    "zh-Hans": {
      title: "在线客服",
      open: "打开聊天：{title}",
      close: "关闭聊天：{title}",
      closeButton: "关闭聊天",
      withUnread: "{label}（{unread}）",
      unreadOther: "{count} 条新消息",
      messages: "消息",
      yourMessage: "您的消息",
      placeholder: "输入消息…",
      send: "发送",
      attach: "向客服发送图片或 PDF",
      attachTitle: "发送图片或 PDF",
      you: "您：",
      speaker: "{name}：",
      agent: "客服",
      file: "文件：",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "快捷回复",
      notDelivered: "未送达",
      tooLong: "内容过长：未发送",
      sending: "正在发送…",
      waiting: "尚未发送：正在等待连接",
      retrying: "尚未发送：稍后将重试",
      connecting: "正在连接…",
      offline: "已离线，正在重新连接…",
      idle: "因长时间未操作已断开连接。发送消息即可重新连接。",
      expired: "您的登录已过期。请刷新页面以继续聊天。",
      unavailable: "此页面无法使用聊天功能。",
      messageTooLong: "消息过长，请缩短后再发送。",
      slowDown: "您发送消息过快，稍后将重试…",
      notDeliveredYet: "消息尚未送达，稍后将重试…",
      notSent: "消息发送失败。",
      fileSending: "正在发送 {name}…",
      fileRetry: "文件尚未发送，{seconds} 秒后重试…",
      fileTooBigMax: "文件过大（最大 {size}）。",
      fileNotSent: "文件未发送。",
      fileOffline: "文件未发送：无网络连接。",
      fileNoAgent: "文件只能发给人工客服：请先在聊天中要求转人工。",
      fileTooBig: "文件过大。",
      fileType: "仅支持发送图片（JPEG、PNG、GIF、WebP）和 PDF。",
      fileRate: "您发送文件过快，请稍候。",
      fileUploads: "其他文件仍在发送中，请稍候。",
      fileBusy: "聊天繁忙，请稍后再试。",
      fileTimeout: "文件发送超时，请重试。",
      fileTooSlow: "网络太慢，无法发送此文件，请尝试较小的文件。",
      fileLimit: "此聊天无法再接收更多文件。",
      fileOff: "此聊天不支持发送文件。",
    },
    // Traditional Chinese (Taiwan's words): zh-TW, zh-HK, zh-MO, zh-Hant-*. Never the
    // Simplified table, which readers of Traditional characters do not expect.
    "zh-Hant": {
      title: "線上客服",
      open: "開啟聊天：{title}",
      close: "關閉聊天：{title}",
      closeButton: "關閉聊天",
      withUnread: "{label}（{unread}）",
      unreadOther: "{count} 則新訊息",
      messages: "訊息",
      yourMessage: "您的訊息",
      placeholder: "輸入訊息…",
      send: "傳送",
      attach: "傳送圖片或 PDF 給客服人員",
      attachTitle: "傳送圖片或 PDF",
      you: "您：",
      speaker: "{name}：",
      agent: "客服人員",
      file: "檔案：",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "快速回覆",
      notDelivered: "未送達",
      tooLong: "內容過長：未傳送",
      sending: "傳送中…",
      waiting: "尚未傳送：正在等待連線",
      retrying: "尚未傳送：稍後將重試",
      connecting: "連線中…",
      offline: "已離線，正在重新連線…",
      idle: "因閒置過久已中斷連線。傳送訊息即可重新連線。",
      expired: "您的登入已過期。請重新載入頁面以繼續聊天。",
      unavailable: "此頁面無法使用聊天功能。",
      messageTooLong: "訊息過長，請縮短後再傳送。",
      slowDown: "您傳送訊息的速度過快，稍後將重試…",
      notDeliveredYet: "訊息尚未送達，稍後將重試…",
      notSent: "訊息傳送失敗。",
      fileSending: "正在傳送 {name}…",
      fileRetry: "檔案尚未傳送，{seconds} 秒後重試…",
      fileTooBigMax: "檔案過大（上限為 {size}）。",
      fileNotSent: "檔案未傳送。",
      fileOffline: "檔案未傳送：沒有網路連線。",
      fileNoAgent: "檔案只能傳給真人客服：請先在聊天中要求轉接真人客服。",
      fileTooBig: "檔案過大。",
      fileType: "僅能傳送圖片（JPEG、PNG、GIF、WebP）和 PDF。",
      fileRate: "您傳送檔案的速度過快，請稍候。",
      fileUploads: "其他檔案仍在傳送中，請稍候。",
      fileBusy: "聊天忙碌中，請稍後再試。",
      fileTimeout: "檔案傳送逾時，請再試一次。",
      fileTooSlow: "網路速度過慢，無法傳送此檔案，請改傳較小的檔案。",
      fileLimit: "此聊天無法再接收更多檔案。",
      fileOff: "此聊天不接受檔案。",
    },
    ja: {
      title: "チャット",
      open: "チャットを開く：{title}",
      close: "チャットを閉じる：{title}",
      closeButton: "チャットを閉じる",
      withUnread: "{label}（{unread}）",
      unreadOther: "新着メッセージ {count} 件",
      messages: "メッセージ一覧",
      yourMessage: "メッセージ",
      placeholder: "メッセージを入力…",
      send: "送信",
      attach: "サポート担当者に画像またはPDFを送信",
      attachTitle: "画像またはPDFを送信",
      you: "あなた：",
      speaker: "{name}：",
      agent: "サポート担当者",
      file: "ファイル：",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "クイック返信",
      notDelivered: "送信できませんでした",
      tooLong: "長すぎるため送信されていません",
      sending: "送信中…",
      waiting: "未送信：接続を待っています",
      retrying: "未送信：まもなく再試行します",
      connecting: "接続中…",
      offline: "オフラインです。再接続しています…",
      idle: "一定時間操作がなかったため切断されました。メッセージを入力すると再接続します。",
      expired: "ログインの有効期限が切れました。チャットを続けるにはページを再読み込みしてください。",
      unavailable: "このページではチャットを利用できません。",
      messageTooLong: "メッセージが長すぎます。短くしてください。",
      slowDown: "メッセージの送信が速すぎます。まもなく再試行します…",
      notDeliveredYet: "メッセージはまだ届いていません。まもなく再試行します…",
      notSent: "メッセージを送信できませんでした。",
      fileSending: "{name} を送信中…",
      fileRetry: "ファイルはまだ送信されていません。{seconds} 秒後に再試行します…",
      fileTooBigMax: "ファイルが大きすぎます（最大 {size}）。",
      fileNotSent: "ファイルは送信されませんでした。",
      fileOffline: "ファイルは送信されませんでした：接続がありません。",
      fileNoAgent: "ファイルは担当者にのみ送信できます。まずチャットで担当者への取り次ぎをご依頼ください。",
      fileTooBig: "ファイルが大きすぎます。",
      fileType: "送信できるのは画像（JPEG、PNG、GIF、WebP）とPDFのみです。",
      fileRate: "ファイルの送信が速すぎます。少しお待ちください。",
      fileUploads: "ほかのファイルを送信中です。少しお待ちください。",
      fileBusy: "チャットが混み合っています。しばらくしてからもう一度お試しください。",
      fileTimeout: "ファイルの送信に時間がかかりすぎました。もう一度お試しください。",
      fileTooSlow: "接続が遅いため、このファイルを送信できません。小さいファイルをお試しください。",
      fileLimit: "このチャットではこれ以上ファイルを送信できません。",
      fileOff: "このチャットではファイルを送信できません。",
    },
    // Right to left (RTL below): the widget takes dir="rtl".
    ar: {
      title: "الدردشة",
      open: "فتح الدردشة: {title}",
      close: "إغلاق الدردشة: {title}",
      closeButton: "إغلاق الدردشة",
      withUnread: "{label} — {unread}",
      unreadZero: "لا رسائل جديدة",
      unreadOne: "رسالة جديدة واحدة",
      unreadTwo: "رسالتان جديدتان",
      unreadFew: "{count} رسائل جديدة",
      unreadMany: "{count} رسالة جديدة",
      unreadOther: "{count} رسالة جديدة",
      messages: "الرسائل",
      yourMessage: "رسالتك",
      placeholder: "اكتب رسالة…",
      send: "إرسال",
      attach: "إرسال صورة أو ملف PDF إلى موظف الدعم",
      attachTitle: "إرسال صورة أو ملف PDF",
      you: "أنت:",
      speaker: "{name}:",
      agent: "موظف الدعم",
      file: "ملف:",
      bytes: "{n} بايت",
      kilobytes: "{n} كيلوبايت",
      megabytes: "{n} ميغابايت",
      quickReplies: "ردود سريعة",
      notDelivered: "لم تصل",
      tooLong: "طويلة جدًا: لم تُرسل",
      sending: "جارٍ الإرسال…",
      waiting: "لم تُرسل بعد: في انتظار الاتصال",
      retrying: "لم تُرسل بعد: ستُعاد المحاولة قريبًا",
      connecting: "جارٍ الاتصال…",
      offline: "غير متصل. جارٍ إعادة الاتصال…",
      idle: "انقطع الاتصال بسبب عدم النشاط. اكتب رسالة لإعادة الاتصال.",
      expired: "انتهت صلاحية تسجيل دخولك. أعد تحميل الصفحة لمواصلة الدردشة.",
      unavailable: "الدردشة غير متاحة في هذه الصفحة.",
      messageTooLong: "هذه الرسالة طويلة جدًا. يُرجى اختصارها.",
      slowDown: "أنت ترسل الرسائل بسرعة كبيرة؛ ستُعاد المحاولة قريبًا…",
      notDeliveredYet: "لم تصل الرسالة بعد؛ ستُعاد المحاولة قريبًا…",
      notSent: "تعذّر إرسال الرسالة.",
      fileSending: "جارٍ إرسال {name}…",
      fileRetry: "لم يُرسل الملف بعد؛ ستُعاد المحاولة بعد {seconds} ث…",
      fileTooBigMax: "هذا الملف كبير جدًا (الحد الأقصى {size}).",
      fileNotSent: "لم يُرسل الملف.",
      fileOffline: "لم يُرسل الملف: لا يوجد اتصال.",
      fileNoAgent: "الملفات تُرسل إلى موظف: اطلب أولًا في الدردشة التحدث إلى موظف.",
      fileTooBig: "هذا الملف كبير جدًا.",
      fileType: "لا يمكن إرسال سوى الصور (JPEG وPNG وGIF وWebP) وملفات PDF.",
      fileRate: "أنت ترسل الملفات بسرعة كبيرة؛ يُرجى الانتظار قليلًا.",
      fileUploads: "لا تزال ملفات أخرى قيد الإرسال؛ يُرجى الانتظار قليلًا.",
      fileBusy: "الدردشة مشغولة؛ يُرجى المحاولة مرة أخرى بعد قليل.",
      fileTimeout: "استغرق إرسال الملف وقتًا طويلًا؛ يُرجى المحاولة مرة أخرى.",
      fileTooSlow: "الاتصال بطيء جدًا لإرسال هذا الملف؛ جرّب ملفًا أصغر.",
      fileLimit: "لا تقبل هذه الدردشة مزيدًا من الملفات.",
      fileOff: "لا تقبل هذه الدردشة الملفات.",
    },
    ru: {
      title: "Чат",
      open: "Открыть чат: {title}",
      close: "Закрыть чат: {title}",
      closeButton: "Закрыть чат",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} новое сообщение",
      unreadFew: "{count} новых сообщения",
      unreadMany: "{count} новых сообщений",
      unreadOther: "{count} новых сообщений",
      messages: "Сообщения",
      yourMessage: "Ваше сообщение",
      placeholder: "Введите сообщение…",
      send: "Отправить",
      attach: "Отправить изображение или PDF сотруднику поддержки",
      attachTitle: "Отправить изображение или PDF",
      you: "Вы:",
      speaker: "{name}:",
      agent: "Сотрудник поддержки",
      file: "Файл:",
      bytes: "{n} Б",
      kilobytes: "{n} КБ",
      megabytes: "{n} МБ",
      quickReplies: "Быстрые ответы",
      notDelivered: "Не доставлено",
      tooLong: "Слишком длинное: не отправлено",
      sending: "Отправка…",
      waiting: "Ещё не отправлено: ждём соединения",
      retrying: "Ещё не отправлено: скоро попробуем снова",
      connecting: "Подключение…",
      offline: "Нет соединения. Переподключение…",
      idle: "Соединение прервано из-за неактивности. Напишите сообщение, чтобы переподключиться.",
      expired: "Срок действия входа истёк. Перезагрузите страницу, чтобы продолжить чат.",
      unavailable: "Чат недоступен на этой странице.",
      messageTooLong: "Сообщение слишком длинное. Пожалуйста, сократите его.",
      slowDown: "Вы отправляете сообщения слишком быстро; скоро попробуем снова…",
      notDeliveredYet: "Сообщение ещё не доставлено; скоро попробуем снова…",
      notSent: "Не удалось отправить сообщение.",
      fileSending: "Отправка файла {name}…",
      fileRetry: "Файл ещё не отправлен; повторная попытка через {seconds} с…",
      fileTooBigMax: "Файл слишком большой (не более {size}).",
      fileNotSent: "Файл не отправлен.",
      fileOffline: "Файл не отправлен: нет соединения.",
      fileNoAgent: "Файлы получает сотрудник: сначала попросите в чате соединить вас с ним.",
      fileTooBig: "Файл слишком большой.",
      fileType: "Можно отправлять только изображения (JPEG, PNG, GIF, WebP) и PDF.",
      fileRate: "Вы отправляете файлы слишком быстро; подождите немного.",
      fileUploads: "Другие файлы ещё отправляются; подождите немного.",
      fileBusy: "Чат перегружен; попробуйте ещё раз чуть позже.",
      fileTimeout: "Отправка файла заняла слишком много времени; попробуйте ещё раз.",
      fileTooSlow: "Соединение слишком медленное для этого файла; попробуйте файл поменьше.",
      fileLimit: "В этот чат больше нельзя отправлять файлы.",
      fileOff: "В этот чат нельзя отправлять файлы.",
    },
    tr: {
      title: "Sohbet",
      open: "Sohbeti aç: {title}",
      close: "Sohbeti kapat: {title}",
      closeButton: "Sohbeti kapat",
      withUnread: "{label} — {unread}",
      unreadOne: "{count} yeni mesaj",
      unreadOther: "{count} yeni mesaj",
      messages: "Mesajlar",
      yourMessage: "Mesajınız",
      placeholder: "Bir mesaj yazın…",
      send: "Gönder",
      attach: "Destek temsilcisine resim veya PDF gönder",
      attachTitle: "Resim veya PDF gönder",
      you: "Siz:",
      speaker: "{name}:",
      agent: "Destek temsilcisi",
      file: "Dosya:",
      bytes: "{n} B",
      kilobytes: "{n} KB",
      megabytes: "{n} MB",
      quickReplies: "Hızlı yanıtlar",
      notDelivered: "İletilmedi",
      tooLong: "Çok uzun: gönderilmedi",
      sending: "Gönderiliyor…",
      waiting: "Henüz gönderilmedi: bağlantı bekleniyor",
      retrying: "Henüz gönderilmedi: birazdan yeniden denenecek",
      connecting: "Bağlanıyor…",
      offline: "Çevrimdışı. Yeniden bağlanılıyor…",
      idle: "Hareketsizlik nedeniyle bağlantı kesildi. Yeniden bağlanmak için bir mesaj yazın.",
      expired: "Oturumunuzun süresi doldu. Sohbete devam etmek için sayfayı yenileyin.",
      unavailable: "Bu sayfada sohbet kullanılamıyor.",
      messageTooLong: "Bu mesaj çok uzun. Lütfen kısaltın.",
      slowDown: "Çok hızlı mesaj gönderiyorsunuz; birazdan yeniden denenecek…",
      notDeliveredYet: "Mesaj henüz iletilmedi; birazdan yeniden denenecek…",
      notSent: "Mesaj gönderilemedi.",
      fileSending: "{name} gönderiliyor…",
      fileRetry: "Dosya henüz gönderilmedi; {seconds} sn sonra yeniden denenecek…",
      fileTooBigMax: "Bu dosya çok büyük (en fazla {size}).",
      fileNotSent: "Dosya gönderilmedi.",
      fileOffline: "Dosya gönderilmedi: bağlantı yok.",
      fileNoAgent: "Dosyalar bir temsilciye gider: önce sohbette bir temsilciyle görüşmek istediğinizi yazın.",
      fileTooBig: "Bu dosya çok büyük.",
      fileType: "Yalnızca resim (JPEG, PNG, GIF, WebP) ve PDF gönderilebilir.",
      fileRate: "Çok hızlı dosya gönderiyorsunuz; lütfen biraz bekleyin.",
      fileUploads: "Başka dosyalar hâlâ gönderiliyor; lütfen biraz bekleyin.",
      fileBusy: "Sohbet şu anda yoğun; lütfen birazdan tekrar deneyin.",
      fileTimeout: "Dosyanın gönderilmesi çok uzun sürdü; lütfen tekrar deneyin.",
      fileTooSlow: "Bağlantı bu dosyayı göndermek için çok yavaş; daha küçük bir dosya deneyin.",
      fileLimit: "Bu sohbete daha fazla dosya gönderilemez.",
      fileOff: "Bu sohbete dosya gönderilemez.",
    },
  }; // end of TEXTS

  // Which language the widget speaks: the first of data-lang, <html lang> and the
  // browser's languages that it has words for (pt-BR -> pt; zh-TW -> zh-Hant), else
  // English. data-texts may override words of any language or add a language.
  var own = Object.prototype.hasOwnProperty;
  var TAG = /^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$/i; // BCP 47, as far as we need it
  var RTL = /^(?:ar|arc|ckb|dv|fa|he|iw|ks|ps|sd|syr|ug|ur|yi)(?:-|$)/i;
  // The file is served as UTF-8; copied to a host that serves it without a charset on a
  // page in another encoding, every non-ASCII word would be garbled: English then.
  var UTF8 = "é" === "\u00e9";
  if (!UTF8) warn("widget.js was not read as UTF-8 (serve it with charset=utf-8); English only");
  function warn(text) {
    if (window.console && console.warn) console.warn("botkit widget: " + text);
  }
  function plainObject(v) {
    return v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;
  }
  var KNOWN = Object.create(null); // every key a text may have: any language's, plural forms too
  Object.keys(TEXTS).forEach(function (l) {
    Object.keys(TEXTS[l]).forEach(function (k) { KNOWN[k] = true; });
  });
  var BUILT_IN = Object.create(null); // "zh-hans" -> "zh-Hans"
  Object.keys(TEXTS).forEach(function (l) { if (UTF8 || l === "en") BUILT_IN[l.toLowerCase()] = l; });
  function langKey(tag) { // "pt_BR" -> "pt-br"; "zh" -> "zh-hans" (the table's names)
    var t = typeof tag === "string" ? tag.trim().replace(/_/g, "-").toLowerCase() : "";
    if (!TAG.test(t)) return null;
    return t === "zh" ? "zh-hans" : t;
  }
  function chain(tag) {
    // The names to look a tag up by, most specific first: "pt-br" -> ["pt-br", "pt"].
    // Chinese goes by script, never by region fallback to the other script:
    // "zh-tw" -> ["zh-tw", "zh-hant"], "zh-cn" -> ["zh-cn", "zh-hans"].
    var t = langKey(tag);
    if (!t) return [];
    var parts = t.split("-"), out = [];
    for (var i = parts.length; i > 0; i--) out.push(parts.slice(0, i).join("-"));
    if (parts[0] === "zh") {
      var hant = parts.indexOf("hant") > 0 ||
        (parts.indexOf("hans") < 0 && parts.some(function (p) { return /^(?:tw|hk|mo)$/.test(p); }));
      out[out.length - 1] = hant ? "zh-hant" : "zh-hans";
      out = out.filter(function (x, i) { return out.indexOf(x) === i; });
    }
    return out;
  }
  function usableText(where, key, value) {
    if (typeof value === "string" && value.trim()) return true;
    warn("data-texts: " + where + key + " must be a non-empty string; ignored");
    return false;
  }
  function siteTexts(raw) {
    // data-texts='{"send": "Go", "de": {"send": "Los"}}': words for every language, and
    // words for one language (which may be one the widget does not ship). Anything else
    // is left out with a warning: a typo must not take the widget down.
    var site = { all: Object.create(null), langs: Object.create(null), names: Object.create(null) };
    if (raw === undefined || raw === null || raw === "") return site;
    var parsed;
    try { parsed = JSON.parse(raw); } catch (e) {
      warn("data-texts is not valid JSON; ignored");
      return site;
    }
    if (!plainObject(parsed)) {
      warn("data-texts must be a JSON object of texts; ignored");
      return site;
    }
    Object.keys(parsed).forEach(function (key) {
      var value = parsed[key];
      if (KNOWN[key] === true) {
        if (usableText("", key, value)) site.all[key] = value;
      } else if (langKey(key) && plainObject(value)) {
        var words = Object.create(null), lk = langKey(key);
        Object.keys(value).forEach(function (k) {
          if (KNOWN[k] !== true) warn("data-texts: unknown text " + key + "." + k + "; ignored");
          else if (usableText(key + ".", k, value[k])) words[k] = value[k];
        });
        site.langs[lk] = words;
        site.names[lk] = key;
      } else if (langKey(key)) {
        warn("data-texts: " + key + " must be an object of texts; ignored");
      } else {
        warn("data-texts: unknown text " + key + "; ignored");
      }
    });
    return site;
  }
  function chooseLanguage(site) {
    var sources = [[ds.lang, true], [document.documentElement.lang, true]];
    (navigator.languages || [navigator.language]).forEach(function (l) { sources.push([l, false]); });
    for (var i = 0; i < sources.length; i++) {
      var names = chain(sources[i][0]);
      for (var j = 0; j < names.length; j++) {
        if (BUILT_IN[names[j]] || site.langs[names[j]]) {
          return { names: names, tag: sources[i][0], fromPage: sources[i][1], name: names[j] };
        }
      }
    }
    return { names: ["en"], tag: "en", fromPage: false, name: "en" };
  }
  var SITE = siteTexts(ds.texts);
  var UI, TEXT; // the language chosen, and its words
  // Chosen when the widget starts, and again whenever a source changes (a single-page
  // app switching its language: see watchLanguage).
  function chooseWords() {
    UI = chooseLanguage(SITE);
    TEXT = Object.create(null); // English, under the language's own words, under the site's
    function add(words) { Object.keys(words).forEach(function (k) { TEXT[k] = words[k]; }); }
    add(TEXTS.en);
    var base = UI.names.filter(function (n) { return BUILT_IN[n]; })[0];
    if (base) add(TEXTS[BUILT_IN[base]]);
    add(SITE.all);
    UI.names.slice().reverse().forEach(function (n) { if (SITE.langs[n]) add(SITE.langs[n]); });
    // The language of the words (for lang=, plural rules and numbers) and their
    // direction: a right-to-left language is right-to-left; one the page chose
    // (data-lang, <html lang>) is left-to-right even on a right-to-left page; otherwise
    // (the browser's language, or English for want of any) the widget keeps the page's.
    UI.lang = BUILT_IN[UI.name] || SITE.names[UI.name] || UI.name;
    UI.dir = RTL.test(UI.lang) ? "rtl" : UI.fromPage ? "ltr" : null;
    UI.locales = [UI.lang];
    try { UI.locales = Intl.getCanonicalLocales([String(UI.tag).replace(/_/g, "-"), UI.lang]); } catch (e) { /* keep */ }
  }
  chooseWords();
  function t(key, vars) {
    var text = TEXT[key] !== undefined ? TEXT[key] : key;
    return !vars ? text : text.replace(/\{(\w+)\}/g, function (m, name) {
      return own.call(vars, name) ? String(vars[name]) : m;
    });
  }
  function num(n, digits) {
    try {
      return new Intl.NumberFormat(UI.locales, {
        useGrouping: false, minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0,
      }).format(n);
    } catch (e) { return digits ? n.toFixed(digits) : String(n); }
  }
  function unreadText(count) {
    var form = "other";
    try { form = new Intl.PluralRules(UI.lang).select(count); } catch (e) { /* other */ }
    var key = "unread" + form.charAt(0).toUpperCase() + form.slice(1);
    return t(TEXT[key] !== undefined ? key : "unreadOther", { count: num(count) });
  }

  var COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
  function pageTitle() { return (ds.title || t("title")).slice(0, 80); }
  // The page's language is a hint for the bot's first answer; a page that declares
  // none sends none (an invented "en" would be remembered as the visitor's language).
  function pageLang() { return ds.lang || document.documentElement.lang || null; }
  var cfg = {
    siteKey: ds.siteKey || "",
    userId: ds.userId || null,
    userHash: ds.userHash || null,
    userToken: ds.userToken || null,
    title: pageTitle(),
    lang: pageLang(),
    color: COLOR.test(ds.themeColor || "") ? ds.themeColor : "#2563eb",
  };
  // Text on the theme colour: white, or black where white would be hard to read (a
  // light brand colour such as yellow), by WCAG relative luminance (above ~0.18 black
  // text contrasts more than white).
  function textOn(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    var lum = [0, 2, 4].map(function (i) {
      var c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return l > 0.179 ? "#111827" : "#fff";
  }
  var CACHE_MAX = 200, OUTBOX_MAX = 50, MAX_BUTTONS = 10;
  var STABLE_MS = 10000; // a socket up this long resets the reconnect backoff
  var encoder = new TextEncoder();

  // ---- who this page says the visitor is --------------------------------------------
  function b64urlText(part) {
    try {
      var b64 = part.replace(/-/g, "+").replace(/_/g, "/");
      var bin = atob(b64 + "===".slice((b64.length + 3) % 4));
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (e) { return null; }
  }
  function jwtSubject(token) {
    // Read, never verified: it only picks the storage slot. The server verifies the JWT.
    try {
      var claims = JSON.parse(b64urlText(token.split(".")[1]) || "null");
      return claims && typeof claims.sub === "string" && claims.sub ? claims.sub : null;
    } catch (e) { return null; }
  }
  function whoOf(token) {
    // "u:<user id>" or "s:<session id>", read from our own session token v1.<kind>.<b64>...
    if (typeof token !== "string") return null;
    var p = token.split(".");
    if (p.length !== 5 || p[0] !== "v1" || (p[1] !== "u" && p[1] !== "s")) return null;
    var subject = b64urlText(p[2]);
    return subject === null ? null : p[1] + ":" + subject;
  }
  var signedIn = Boolean(cfg.userId || cfg.userToken);
  var subject = cfg.userId || (cfg.userToken ? jwtSubject(cfg.userToken) : null);
  // One localStorage slot per identity: a signed-in user's session token and messages
  // never land where a signed-out visitor (or another user) of this browser would read
  // them. A JWT whose subject cannot be read keeps its state in memory only.
  var SLOT_BASE = "botkit:" + server.host + (server.pathname === "/" ? "" : server.pathname) +
    ":" + cfg.siteKey;
  var STORE_KEY = subject ? SLOT_BASE + ":u:" + subject : SLOT_BASE;
  var persist = !signedIn || subject !== null;
  function fitsSlot(who) {
    if (!who) return true;
    return subject ? who === "u:" + subject : !signedIn && who.charAt(0) === "s";
  }
  function forgetOtherUsers() {
    // A shared computer: whoever signs in (or out) next must not inherit another user's
    // 30-day session token or read their messages from this browser's storage.
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && k !== STORE_KEY && k.indexOf(SLOT_BASE + ":u:") === 0) localStorage.removeItem(k);
      }
    } catch (e) { /* storage blocked */ }
  }

  // ---- persisted state (token, last seq, recent messages, unsent messages) ------------
  // who: the conversation the cache belongs to ("u:<id>" / "s:<id>", from the token).
  // readSeq: the newest message the visitor has had in front of them (an open panel);
  // the replies after it are the launcher's unread count.
  var state = { token: null, who: null, lastSeq: 0, cache: [], outbox: [], open: false, readSeq: 0 };
  var finished = []; // client ids this tab is done with: never merged back into storage
  function readStored() {
    try {
      var raw = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      return raw && typeof raw === "object" ? raw : null;
    } catch (e) { return null; }
  }
  function load() {
    if (!persist) return;
    var raw = readStored();
    if (!raw) return;
    var token = typeof raw.token === "string" ? raw.token : null;
    var who = typeof raw.who === "string" ? raw.who : whoOf(token);
    if (!fitsSlot(who) || (token && !fitsSlot(whoOf(token)))) {
      // Written for someone else (an older widget kept signed-in users in the anonymous
      // slot): never shown, never presented.
      try { localStorage.removeItem(STORE_KEY); } catch (e) { /* ignore */ }
      return;
    }
    state.token = token;
    state.who = who;
    state.lastSeq = Number.isInteger(raw.lastSeq) && raw.lastSeq > 0 ? raw.lastSeq : 0;
    state.cache = Array.isArray(raw.cache) ? raw.cache.filter(validCached).map(cleanCached) : [];
    state.outbox = Array.isArray(raw.outbox) ? raw.outbox.filter(validOutbox).slice(-OUTBOX_MAX) : [];
    state.open = raw.open === true;
    state.readSeq = Number.isInteger(raw.readSeq) && raw.readSeq > 0 ? raw.readSeq : 0;
    // The cache must end where lastSeq ends, or the gap would never be asked for.
    var top = state.cache.length ? state.cache[state.cache.length - 1].seq : 0;
    if (top !== state.lastSeq) { state.cache = []; state.lastSeq = 0; }
  }
  function validCached(m) {
    return m && Number.isInteger(m.seq) && typeof m.text === "string" &&
      (m.direction === "in" || m.direction === "out");
  }
  function cleanCached(m) {
    var c = { seq: m.seq, direction: m.direction, text: m.text };
    if (m.direction !== "in" && agentName(m)) c.agent = agentName(m);
    if (cleanLang(m.lang)) c.lang = m.lang;
    var buttons = validButtons(m.buttons);
    if (buttons.length) c.buttons = buttons;
    var files = validFiles(m.files);
    if (files.length) c.files = files;
    if (m.failed === true) c.failed = true;
    return c;
  }
  function validOutbox(m) {
    return m && typeof m.client_id === "string" && typeof m.text === "string";
  }
  function cleanLang(v) { return typeof v === "string" && v.length <= 35 && TAG.test(v) ? v : null; }
  function adoptReadSeq(stored) {
    // What the visitor read in another tab of this conversation is read here too. (Not a
    // readSeq past what this tab holds: this tab has just started its cache over.)
    if (stored && stored.who === state.who && Number.isInteger(stored.readSeq) &&
        stored.readSeq > state.readSeq && stored.readSeq <= state.lastSeq) {
      state.readSeq = stored.readSeq;
      labelLauncher();
    }
  }
  function save() {
    if (!persist) return;
    try {
      // Other tabs share this slot: keep the unsent messages they stored (union by
      // client_id), or a tab saving its own state would delete another tab's outbox.
      var outbox = state.outbox.slice(), have = {};
      outbox.forEach(function (m) { have[m.client_id] = true; });
      var stored = readStored();
      if (stored && Array.isArray(stored.outbox)) {
        stored.outbox.filter(validOutbox).forEach(function (m) {
          if (!have[m.client_id] && finished.indexOf(m.client_id) < 0) {
            have[m.client_id] = true;
            outbox.push(m);
          }
        });
      }
      adoptReadSeq(stored);
      localStorage.setItem(STORE_KEY, JSON.stringify({
        token: state.token, who: state.who, lastSeq: state.lastSeq, cache: state.cache,
        outbox: outbox.slice(-OUTBOX_MAX), open: state.open, readSeq: state.readSeq,
      }));
    } catch (e) { /* storage blocked or full */ }
  }
  // ---- DOM --------------------------------------------------------------------------
  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  // Icons are SVG drawn with DOM calls, never emoji: a system without an emoji font
  // shows an emoji as an empty box. Each is aria-hidden; its control has a text name.
  var SVG_NS = "http://www.w3.org/2000/svg";
  function icon(size, d, stroked) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size));
    svg.setAttribute("height", String(size));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    if (stroked) {
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
    } else {
      path.setAttribute("fill", "currentColor");
    }
    svg.append(path);
    return svg;
  }
  function chatIcon() { // a speech bubble
    return icon(28, "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  }
  function clipIcon(size) { // a paperclip
    return icon(size, "M14 8v8a2 2 0 0 1-4 0V5.5a3.5 3.5 0 0 1 7 0V17a5 5 0 0 1-10 0V8", true);
  }
  var uid = "botkit-" + Math.random().toString(36).slice(2, 8);
  var css = el("link", null, { rel: "stylesheet", href: new URL("widget.css", server).href });
  css.addEventListener("load", function () { follow(); }); // the list scrolls from now on
  // The widget lives in a shadow root of its own element: the host page's rules (h2,
  // header, section, button, textarea, li::before...) cannot reach inside, and ours
  // cannot leak out. `:host` in widget.css stops inherited text styles at the border.
  var host = document.createElement("botkit-chat");
  var shadow = host.attachShadow({ mode: "open" });
  // lang: the language of the widget's own words (a message has its own, from the server).
  var root = el("div", "botkit-root");
  root.style.setProperty("--botkit-accent", cfg.color);
  root.style.setProperty("--botkit-on-accent", textOn(cfg.color));
  var launcher = el("button", "botkit-launcher", {
    type: "button", "aria-expanded": "false", "aria-controls": uid + "-panel",
  });
  // Replies that came while the panel was closed: a count on the launcher (its name says
  // it too; the badge itself is hidden from screen readers).
  var badge = el("span", "botkit-badge", { "aria-hidden": "true" });
  badge.hidden = true;
  launcher.append(chatIcon(), badge);
  var panel = el("section", "botkit-panel", {
    id: uid + "-panel", role: "dialog", "aria-labelledby": uid + "-title", tabindex: "-1",
  });
  panel.hidden = true;
  var header = el("header", "botkit-header");
  var heading = el("h2", "botkit-title", { id: uid + "-title" });
  var closeBtn = el("button", "botkit-close", { type: "button" });
  closeBtn.textContent = "\u00D7";
  header.append(heading, closeBtn);
  var status = el("div", "botkit-status", { role: "status" });
  var log = el("ol", "botkit-log", {
    role: "log", "aria-live": "polite", tabindex: "0",
  });
  var typing = el("div", "botkit-typing", { "aria-hidden": "true" });
  typing.append(el("span"), el("span"), el("span"));
  typing.hidden = true;
  var form = el("form", "botkit-form");
  var label = el("label", "botkit-sr", { for: uid + "-input" });
  var input = el("textarea", "botkit-input", {
    id: uid + "-input", rows: "1", autocomplete: "off",
  });
  // What is typed takes the direction of its own first letter (dir=auto); the empty box
  // takes the widget's, or an Arabic placeholder (and the caret) would start at the left.
  function fitInputDir() {
    if (input.value) input.setAttribute("dir", "auto"); else input.removeAttribute("dir");
  }
  var sendBtn = el("button", "botkit-send", { type: "submit" });
  // A file goes to the human agent of the conversation: the server says how big one may
  // be (0: not taken), and whether a person is there to take it.
  var FILE_TYPES = "image/jpeg,image/png,image/gif,image/webp,application/pdf";
  var fileInput = el("input", "botkit-sr", {
    type: "file", accept: FILE_TYPES, tabindex: "-1", "aria-hidden": "true",
  });
  var attachBtn = el("button", "botkit-attach", { type: "button" });
  attachBtn.append(clipIcon(22));
  attachBtn.hidden = true;
  form.append(label, attachBtn, fileInput, input, sendBtn);
  panel.append(header, status, log, typing, form);
  root.append(launcher, panel);
  // The widget's own words on its own elements (the launcher's: labelLauncher). Said
  // again when the language changes; messages shown keep theirs (see watchLanguage).
  function showWords() {
    root.setAttribute("lang", UI.lang);
    if (UI.dir) root.setAttribute("dir", UI.dir); else root.removeAttribute("dir");
    heading.textContent = cfg.title;
    closeBtn.setAttribute("aria-label", t("closeButton"));
    log.setAttribute("aria-label", t("messages"));
    label.textContent = t("yourMessage");
    input.setAttribute("placeholder", t("placeholder"));
    sendBtn.textContent = t("send");
    attachBtn.setAttribute("aria-label", t("attach"));
    attachBtn.setAttribute("title", t("attachTitle"));
  }
  showWords();

  // ---- safe rendering ---------------------------------------------------------------
  // **bold**, *italic*, `code`, [label](http(s)://...) and bare http(s) links. Nothing
  // else is interpreted; everything else is text.
  var TOKEN = /\*\*([^*\n]{1,500})\*\*|`([^`\n]{1,500})`|\[([^\]\n]{1,200})\]\((https?:\/\/[^\s()<>]{1,2000})\)|(https?:\/\/[^\s<>()"']{1,2000})|\*([^*\n]{1,500})\*/g;
  function safeHref(raw) {
    try {
      var url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }
  function link(href, text) {
    var safe = safeHref(href);
    if (!safe) return document.createTextNode(text);
    var a = el("a", null, { href: safe, target: "_blank", rel: "noopener noreferrer nofollow" });
    a.textContent = text;
    return a;
  }
  function styled(tag, text) { var n = el(tag); n.textContent = text; return n; }
  function renderMarkdown(node, text) {
    node.textContent = "";
    var last = 0, m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > last) node.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) node.append(styled("strong", m[1]));
      else if (m[2] !== undefined) node.append(styled("code", m[2]));
      else if (m[3] !== undefined) node.append(link(m[4], m[3]));
      else if (m[5] !== undefined) {
        // A sentence's own punctuation after a bare link is not part of it:
        // "see https://shop.example/returns." links to /returns.
        var url = m[5].replace(/[.,;:!?]+$/, "");
        node.append(link(url, url));
        if (url.length < m[5].length) node.append(document.createTextNode(m[5].slice(url.length)));
      }
      else node.append(styled("em", m[6]));
      last = TOKEN.lastIndex;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  // ---- message list -----------------------------------------------------------------
  var bySeq = {};      // seq -> bubble
  var byClient = {};   // client_id -> pending bubble
  var byStream = {};   // stream_id -> streaming bubble

  // The list follows new messages while the visitor is at its end; one who scrolled up
  // to read back is not pulled down by every word of a reply. Opening the panel and
  // sending a message go to the end.
  var atEnd = true;
  log.addEventListener("scroll", function () {
    atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  });
  function follow(always) {
    if (always) atEnd = true;
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  // A message a human agent wrote carries their name ("" when they gave none): shown above
  // the text, so the visitor sees a person has taken over. Plain text, like all names.
  function agentName(m) {
    return typeof m.agent === "string" ? (m.agent.slice(0, 100) || t("agent")) : null;
  }
  function bubble(direction, text, markdown, agent, lang) {
    var li = el("li", "botkit-msg botkit-" + (direction === "in" ? "in" : "out"));
    // dir=auto: each message takes the direction of its own first strong letter, so an
    // Arabic reply on an English page (or English on a Hebrew page) keeps its
    // punctuation and word order; the bubble's side still follows the page.
    var body = el("div", "botkit-text", { dir: "auto" });
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    // The message's language, as the server detected it: read out with the right voice,
    // and Chinese or Japanese drawn with their own glyphs, whatever the widget's language.
    if (lang) body.setAttribute("lang", lang);
    var who = el("span", "botkit-sr");
    who.textContent = (direction === "in" ? t("you") : t("speaker", { name: agent || cfg.title })) + " ";
    li.append(who);
    if (agent) {
      var label = el("span", "botkit-agent", { dir: "auto" });
      label.textContent = agent;
      label.setAttribute("aria-hidden", "true"); // the screen-reader prefix says it
      li.append(label);
    }
    li.append(body);
    log.append(li);
    follow();
    return li;
  }
  function validFiles(list) {
    return (Array.isArray(list) ? list : []).filter(function (f) {
      return f && typeof f.name === "string" && Number.isInteger(f.size) && f.size >= 0;
    }).slice(0, 10).map(function (f) { return { name: f.name.slice(0, 200), size: f.size }; });
  }
  function sizeText(n) {
    if (n < 1024) return t("bytes", { n: num(n) });
    if (n < 1024 * 1024) return t("kilobytes", { n: num(Math.round(n / 1024)) });
    return t("megabytes", { n: num(n / 1024 / 1024, 1) });
  }
  function showFiles(li, files) {
    files.forEach(function (f) {
      var chip = el("div", "botkit-file");
      var kind = el("span", "botkit-sr");
      kind.textContent = t("file") + " "; // what the paperclip says to the eye
      var name = el("span", null, { dir: "auto" });
      name.textContent = f.name;
      chip.append(clipIcon(14), kind, name, " (" + sizeText(f.size) + ")");
      li.append(chip);
    });
    if (files.length) follow();
  }
  function setText(li, text, markdown) {
    var body = li.querySelector(".botkit-text");
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    follow();
  }
  function markFailed(li, why) {
    setPending(li, null);
    li.classList.remove("botkit-streaming");
    li.removeAttribute("aria-busy");
    li.classList.add("botkit-failed");
    var note = li.querySelector(".botkit-note") || el("span", "botkit-note");
    note.textContent = why || t("notDelivered");
    li.append(note);
  }
  // A message of the visitor's the server has not acknowledged yet says so in words,
  // shown and read out with the message (not by a paler colour alone). It goes by
  // itself: the outbox is sent again on every connect, after a reload too, so there is
  // nothing for the visitor to retry. The texts are TEXTS' sending, waiting and retrying.
  // An ack comes within milliseconds: "Sending..." only for one that does not, so a
  // message is not announced (nor flickers) with it every time.
  var SENDING_NOTE_MS = 1000;
  function setPending(li, how) { // how: "sending", "waiting", "retrying"; null: done
    clearTimeout(li.botkitNoteTimer);
    var note = li.querySelector(".botkit-state");
    if (!how) {
      if (note) note.remove();
      li.classList.remove("botkit-pending", "botkit-unsent");
      return;
    }
    li.classList.add("botkit-pending");
    if (how === "sending" && !note) {
      li.botkitNoteTimer = setTimeout(function () { sayUnsent(li, t("sending")); }, SENDING_NOTE_MS);
    } else {
      sayUnsent(li, t(how));
    }
  }
  function sayUnsent(li, text) {
    var note = li.querySelector(".botkit-state");
    if (!note) {
      note = el("span", "botkit-note botkit-state");
      li.append(note);
    }
    if (note.textContent !== text) note.textContent = text; // unchanged: not read again
    li.classList.add("botkit-unsent");
  }
  function outboxWaits() { // no socket to send on, for now
    Object.keys(byClient).forEach(function (id) { setPending(byClient[id], "waiting"); });
  }
  // Quick replies: real buttons (keyboard, screen readers, 44 px targets), shown under the
  // newest message only; a click sends the button's value as the visitor's message.
  function validButtons(list) {
    if (!Array.isArray(list)) return [];
    var out = [];
    list.forEach(function (b) {
      if (!b || typeof b !== "object" || out.length >= MAX_BUTTONS) return;
      var label = typeof b.label === "string" && b.label.trim() ? b.label.trim() : "";
      var value = typeof b.value === "string" && b.value.trim() ? b.value.trim() : label;
      if (!label) label = value;
      if (label) out.push({ label: label.slice(0, 80), value: value });
    });
    return out;
  }
  function clearButtons() {
    Array.prototype.slice.call(log.querySelectorAll(".botkit-buttons"))
      .forEach(function (n) { n.remove(); });
  }
  function showButtons(li, buttons) {
    clearButtons();
    if (!buttons.length) return;
    var group = el("div", "botkit-buttons", { role: "group", "aria-label": t("quickReplies") });
    var lang = li.querySelector(".botkit-text").getAttribute("lang"); // the message's
    buttons.forEach(function (b) {
      var btn = el("button", "botkit-quick", { type: "button", dir: "auto" });
      if (lang) btn.setAttribute("lang", lang);
      btn.textContent = b.label; // its accessible name, never markup
      btn.addEventListener("click", function () {
        queue(b.value);
        input.focus(); // the button itself is gone with its group
      });
      group.append(btn);
    });
    li.append(group);
    follow();
  }
  function remember(msg, buttons, failed, files, lang) {
    if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;
    var c = { seq: msg.seq, direction: msg.direction, text: msg.text };
    if (msg.direction !== "in" && agentName(msg)) c.agent = agentName(msg);
    if (lang) c.lang = lang;
    if (buttons.length) c.buttons = buttons;
    if (files.length) c.files = files;
    if (failed) c.failed = true;
    state.cache.push(c);
    if (state.cache.length > CACHE_MAX) state.cache.splice(0, state.cache.length - CACHE_MAX);
    save();
  }
  function streamsLive() { return Object.keys(byStream).length > 0; }
  function onStored(msg) {
    if (!Number.isInteger(msg.seq) || msg.seq < 1 || typeof msg.text !== "string") return;
    var failed = msg.status === "failed";
    if (bySeq[msg.seq]) { // already shown: never twice, but a failure is still news
      if (failed) {
        markFailed(bySeq[msg.seq]);
        state.cache.forEach(function (c) { if (c.seq === msg.seq) c.failed = true; });
        save();
      }
      return;
    }
    var out = msg.direction !== "in";
    var lang = cleanLang(msg.language);
    var li = (msg.client_id && byClient[msg.client_id]) || (msg.stream_id && byStream[msg.stream_id]);
    if (li) {
      setText(li, msg.text, out);
      if (lang) li.querySelector(".botkit-text").setAttribute("lang", lang);
      if (msg.client_id) setPending(li, null);
      li.classList.remove("botkit-streaming");
      li.removeAttribute("aria-busy");
      if (msg.client_id) { delete byClient[msg.client_id]; dropOutbox(msg.client_id); }
      if (msg.stream_id) delete byStream[msg.stream_id];
    } else {
      var agent = out ? agentName(msg) : null;
      li = bubble(msg.direction, msg.text, out && !agent, agent, lang);
    }
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
    var files = validFiles(msg.attachments);
    showFiles(li, files);
    if (failed) markFailed(li);
    var buttons = out && !failed ? validButtons(msg.buttons) : [];
    if (msg.seq >= state.lastSeq) showButtons(li, buttons);
    if (!panel.hidden && msg.seq > state.readSeq) state.readSeq = msg.seq; // seen as it came
    remember(msg, buttons, failed, files, lang);
    if (out) typing.hidden = !streamsLive() || typing.hidden;
    labelLauncher(); // a reply while the panel is closed: one more on the launcher
  }
  function onUpdate(msg) {
    // The language the bot detected in a message shown before it was read (the
    // visitor's own, shown as soon as stored): read out with its own voice from now on,
    // and after a reload (the cache keeps it). A null language (the bot could not tell)
    // leaves the message without one, as its replay shows it.
    var lang = cleanLang(msg.language);
    var li = Number.isInteger(msg.seq) ? bySeq[msg.seq] : null;
    if (!li || !lang) return;
    li.querySelector(".botkit-text").setAttribute("lang", lang);
    state.cache.forEach(function (c) { if (c.seq === msg.seq) c.lang = lang; });
    save();
  }
  function onAck(msg) {
    var li = byClient[msg.client_id];
    dropOutbox(msg.client_id);
    if (!li) return;
    delete byClient[msg.client_id];
    setPending(li, null);
    if (bySeq[msg.seq]) { li.remove(); return; } // already shown via history
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
  }
  function onStream(msg) {
    if (typeof msg.stream_id !== "string") return;
    var li = byStream[msg.stream_id];
    if (!li) {
      li = bubble("out", msg.text || "", false);
      li.classList.add("botkit-streaming");
      li.setAttribute("aria-busy", "true"); // read once complete, not token by token
      byStream[msg.stream_id] = li;
    } else if (msg.text) {
      setText(li, msg.text, false);
    }
    typing.hidden = Boolean(msg.text);
  }
  function onDelta(msg) {
    var li = byStream[msg.stream_id];
    if (!li || typeof msg.text !== "string") return;
    var body = li.querySelector(".botkit-text");
    body.append(document.createTextNode(msg.text));
    typing.hidden = true;
    follow();
  }
  function onStreamEnd(msg) {
    var li = byStream[msg.stream_id];
    if (li) { li.remove(); delete byStream[msg.stream_id]; } // its stored copy came another way
    if (!streamsLive()) typing.hidden = true;
  }
  function endStreams() {
    // A socket's streams end with it: the stored reply comes back through history, and
    // the next welcome's snapshot recreates the replies still being generated.
    Object.keys(byStream).forEach(function (id) { byStream[id].remove(); });
    byStream = {};
    typing.hidden = true;
  }
  function dropOutbox(clientId) {
    state.outbox = state.outbox.filter(function (m) { return m.client_id !== clientId; });
    if (finished.indexOf(clientId) < 0) finished.push(clientId);
    if (finished.length > 500) finished.splice(0, finished.length - 500);
    save();
  }
  function failItem(clientId, why) {
    var li = byClient[clientId];
    if (li) markFailed(li, why);
    delete byClient[clientId];
    dropOutbox(clientId);
  }

  // ---- connection -------------------------------------------------------------------
  var ws = null, attempt = 0, retryTimer = null, stableTimer = null, idle = false;
  var maxBytes = 16384;
  var maxFileBytes = 0;     // from the welcome; 0 until then, or when files are off
  var sendingFile = false;
  var refused = false;      // the server refused the page's identity: wait for a new one
  var connText = "";        // the connection's status, shown again after a passing notice
  var statusTimer = null;   // says "Connecting..." once a connect has taken
  var CONNECTING_SAY_MS = 1000;
  var connKey = null;       // ... and its text's name, to say it again in another language
  function setStatus(key) {
    connKey = key;
    connText = key ? t(key) : "";
    status.textContent = connText;
  }
  function notice(text) { status.textContent = text; }
  function pageUserToken() {
    // A site JWT lives minutes: a page that keeps the chat open longer puts a fresh one
    // in data-user-token, and every connect presents the newest one of the same user.
    var t = script.getAttribute("data-user-token");
    if (t && t !== cfg.userToken && jwtSubject(t) === subject) cfg.userToken = t;
    return cfg.userToken;
  }
  function hello(sock) {
    var h = { type: "hello", site_key: cfg.siteKey, after_seq: state.lastSeq, lang: cfg.lang };
    // The page's identity goes with every hello: the server takes a signed-in user's
    // session token only next to it (alone it means a signed-out page).
    if (cfg.userId) { h.user_id = cfg.userId; h.user_hash = cfg.userHash; }
    else if (cfg.userToken) h.user_token = pageUserToken();
    if (state.token && fitsSlot(state.who || whoOf(state.token))) {
      h.token = state.token;
      sock.sentToken = true;
    }
    sock.afterSeq = h.after_seq;
    return h;
  }
  function connect() {
    if (ws || !cfg.siteKey || refused) return;
    clearTimeout(retryTimer);
    idle = false;
    var sock = new WebSocket(WS_URL);
    ws = sock;
    // Said only when it lasts: most connections are up within milliseconds, every time
    // the panel opens, and a status change is read out by screen readers. A status
    // already shown (offline, idle) stays until then.
    clearTimeout(statusTimer);
    statusTimer = setTimeout(function () {
      if (ws === sock && !sock.welcomed) setStatus("connecting");
    }, CONNECTING_SAY_MS);
    sock.sent = [];
    sock.onopen = function () { sock.send(JSON.stringify(hello(sock))); };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object" || ws !== sock) return;
      switch (msg.type) {
        case "welcome": onWelcome(sock, msg); break;
        case "message": onStored(msg); break;
        case "ack": onAck(msg); break;
        case "update": onUpdate(msg); break;
        case "stream": onStream(msg); break;
        case "delta": onDelta(msg); break;
        case "stream_end": onStreamEnd(msg); break;
        case "error": onError(sock, msg); break;
        default: break;
      }
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      onClose(sock, ev.code);
    };
  }
  function restart(sock) {
    // Drop this socket and connect again at once (the hello is built afresh).
    sock.onclose = null;
    sock.onmessage = null;
    if (ws === sock) ws = null;
    clearTimeout(stableTimer);
    endStreams();
    try { sock.close(1000); } catch (e) { /* already closing */ }
    connect();
  }
  function onClose(sock, code) {
    clearTimeout(stableTimer);
    endStreams();
    // A welcomed socket closed 4401 is a sign-in that ended (the server closes a JWT
    // user's socket at the JWT's exp): ask again, with the page's newest JWT. Refused,
    // the visitor is told their sign-in expired; what they typed stays in the outbox.
    if (code === 4401 && (sock.sentToken || (sock.welcomed && signedIn))) {
      if (signedIn) { // maybe only the session token was refused: ask without it
        state.token = null;
        save();
      } else { // our stored session is no longer valid: start a new conversation
        resetConversation();
      }
      connect();
      return;
    }
    if (code === 4401) { // the page's own identity was refused: nothing to retry with
      refused = true;
      setStatus(cfg.userToken && sock.refusal === "expired_token" ? "expired" : "unavailable");
      outboxWaits();
      return;
    }
    if (code === 4408 && sock.welcomed) { // idle: nobody sent anything for a while
      if (!panel.hidden && document.visibilityState === "visible") { connect(); return; }
      idle = true;
      setStatus("idle");
      outboxWaits();
      return;
    }
    if (code === 1009) { // a message was too big for the server: it must not be resent
      var sent = state.outbox.filter(function (m) { return sock.sent.indexOf(m.client_id) >= 0; });
      var item = sent.length ? sent.reduce(function (a, b) { return frameBytes(b) >= frameBytes(a) ? b : a; })
        : state.outbox[state.outbox.length - 1];
      if (item) failItem(item.client_id, t("tooLong"));
    }
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    setStatus("offline");
    outboxWaits();
    retryTimer = setTimeout(connect, delay);
  }
  function onWelcome(sock, msg) {
    sock.welcomed = true;
    // The backoff is reset only by a socket that stays up; one closed right after its
    // welcome (e.g. refused frames) must not reconnect at full speed for ever.
    clearTimeout(stableTimer);
    stableTimer = setTimeout(function () { if (ws === sock) attempt = 0; }, STABLE_MS);
    if (Number.isInteger(msg.max_message_bytes) && msg.max_message_bytes > 0) maxBytes = msg.max_message_bytes;
    maxFileBytes = Number.isInteger(msg.max_file_bytes) && msg.max_file_bytes > 0 ? msg.max_file_bytes : 0;
    attachBtn.hidden = !maxFileBytes;
    var who = whoOf(msg.token);
    var kind = msg.identity === "user" ? "u" : msg.identity === "session" ? "s" : null;
    // A different conversation than the cached one (another identity or subject), or a
    // server whose conversation is shorter than our cache (a restored database): the
    // cache is not this conversation's, so it goes before anything is shown.
    var stale = (state.who !== null && who !== null && who !== state.who) ||
      (state.who !== null && kind !== null && state.who.charAt(0) !== kind) ||
      (Number.isInteger(msg.last_seq) && msg.last_seq < state.lastSeq);
    // Only a token of this slot's identity is kept (an unreadable one by its kind).
    if (typeof msg.token === "string" && (who !== null ? fitsSlot(who) : (kind === "u") === signedIn)) {
      state.token = msg.token;
      state.who = who;
    }
    if (stale) {
      resetCache();
      save();
      var from = Number.isInteger(msg.after_seq) ? msg.after_seq : sock.afterSeq;
      if (from > 0) { restart(sock); return; } // ask again from the start
    }
    // A conversation this browser shows for the first time (a new device, another
    // signed-in user) starts with its history read: only later replies are news.
    if (state.lastSeq === 0 && Number.isInteger(msg.last_seq) && msg.last_seq > state.readSeq) {
      state.readSeq = msg.last_seq;
    }
    save();
    setStatus(null);
    // Resend what is unacknowledged (the server answers once); what can never fit fails.
    state.outbox.slice().forEach(function (item) {
      if (frameBytes(item) > maxBytes) failItem(item.client_id, t("tooLong"));
      else transmit(item);
    });
  }
  function onError(sock, msg) {
    if (!sock.welcomed) { sock.refusal = msg.code; return; } // the close code follows
    var li = msg.client_id && byClient[msg.client_id];
    // Not taken now, to send again after retry_after: over a rate, the store away, or
    // the server shutting down (the socket then closes, and the next one reaches
    // another server; the outbox goes with its welcome if that comes first).
    var retry = msg.code === "rate_limited" || msg.code === "rejected" ||
      msg.code === "unavailable" || msg.code === "shutting_down";
    if (retry && msg.client_id) {
      if (li) setPending(li, "retrying");
      notice(t(msg.code === "rate_limited" ? "slowDown" : "notDeliveredYet"));
      var wait = Math.min(60, Math.max(0.2, Number(msg.retry_after) || 1)) * 1000;
      setTimeout(function () {
        var item = state.outbox.filter(function (m) { return m.client_id === msg.client_id; })[0];
        if (item) transmit(item);
        status.textContent = connText;
      }, wait);
      return;
    }
    if (li) failItem(msg.client_id);
    // The server's own words are English (for developers): the visitor reads theirs.
    notice(t("notSent"));
  }
  function resetCache() {
    state.lastSeq = 0; state.cache = []; state.readSeq = 0;
    bySeq = {};
    endStreams();
    Array.prototype.slice.call(log.querySelectorAll(".botkit-msg:not(.botkit-pending)"))
      .forEach(function (n) { n.remove(); });
  }
  function resetConversation() {
    state.token = null; state.who = null;
    resetCache();
    save();
  }
  function frameBytes(item) {
    // What the server measures: the whole JSON frame, after escaping, in UTF-8.
    return encoder.encode(JSON.stringify({ type: "message", client_id: item.client_id, text: item.text })).length;
  }
  function transmit(item) {
    // Before the welcome nothing goes out: the welcome resends the whole outbox.
    var li = byClient[item.client_id];
    if (ws && ws.welcomed && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "message", client_id: item.client_id, text: item.text }));
      if (ws.sent.indexOf(item.client_id) < 0) ws.sent.push(item.client_id);
    }
    // Connecting counts as sending: it goes with the welcome, most often at once.
    if (li) setPending(li, ws ? "sending" : "waiting");
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function queue(text) {
    var item = { client_id: newId(), text: text };
    if (frameBytes(item) > maxBytes) { notice(t("messageTooLong")); return false; }
    status.textContent = connText; // a passing notice (too long) is over
    clearButtons();
    byClient[item.client_id] = bubble("in", text, false);
    follow(true);
    state.outbox.push(item);
    save();
    if (!ws) connect();
    transmit(item);
    return true;
  }
  function send() {
    var text = input.value.trim();
    if (text && queue(text)) { input.value = ""; fitInputDir(); }
  }
  // A file is posted over HTTP (a socket frame holds text only); the server stores it as
  // a message of its own, which comes back through the socket like any other.
  // The server's refusals, by code, and the texts that say them (any other: fileNotSent).
  var FILE_REFUSED = {
    no_agent: "fileNoAgent",
    too_large: "fileTooBig",
    unsupported_file: "fileType",
    rate_limited: "fileRate",
    too_many_uploads: "fileUploads",
    busy: "fileBusy",
    upload_timeout: "fileTimeout",
    upload_too_slow: "fileTooSlow", // not retried: the same link would trickle it again
    file_limit: "fileLimit",
    files_disabled: "fileOff",
  };
  // Refusals that pass: the same file is sent again, under the same client_id, so a file
  // the server kept while its answer was lost is answered as kept, not stored twice.
  var FILE_RETRY = {
    busy: 1, unavailable: 1, shutting_down: 1, upload_timeout: 1, too_many_uploads: 1, rate_limited: 1,
  };
  var FILE_TRIES = 5;
  function sendFile(file) {
    if (file.size > maxFileBytes) {
      notice(t("fileTooBigMax", { size: sizeText(maxFileBytes) }));
      return;
    }
    if (!state.token || sendingFile) return;
    sendingFile = true;
    attachBtn.disabled = true;
    var clientId = newId(), tries = 0;
    function done(text) {
      notice(text);
      sendingFile = false;
      attachBtn.disabled = false;
    }
    function again(seconds, why) {
      if (tries >= FILE_TRIES) { done(why); return; }
      var wait = Math.min(30, Math.max(seconds || 0, Math.pow(2, tries - 1)));
      notice(t("fileRetry", { seconds: num(Math.ceil(wait)) }));
      setTimeout(post, wait * 1000);
    }
    function post() {
      tries += 1;
      notice(t("fileSending", { name: file.name }));
      var url = new URL("api/files", server);
      url.searchParams.set("client_id", clientId);
      url.searchParams.set("name", file.name.slice(0, 200));
      fetch(url.href, {
        method: "POST",
        headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/octet-stream" },
        body: file,
      }).then(function (res) {
        if (res.ok) { done(connText); return; }
        var after = Number(res.headers.get("Retry-After")) || 0;
        return res.json().then(function (body) { return body || {}; }, function () { return {}; })
          .then(function (body) {
            var why = t(own.call(FILE_REFUSED, body.error) ? FILE_REFUSED[body.error] : "fileNotSent");
            if (FILE_RETRY[body.error] || res.status >= 500) again(Number(body.retry_after) || after, why);
            else done(why);
          });
      }, function () {
        again(0, t("fileOffline"));
      });
    }
    post();
  }

  // ---- interaction ------------------------------------------------------------------
  function unreadCount() {
    return state.cache.filter(function (m) {
      return m.direction === "out" && m.seq > state.readSeq && !m.failed;
    }).length;
  }
  function labelLauncher() {
    // "Open chat: Shop help — 2 new messages": the launcher's name says what its badge shows.
    var open = !panel.hidden, count = open ? 0 : unreadCount();
    var name = t(open ? "close" : "open", { title: cfg.title });
    launcher.setAttribute("aria-label", count ? t("withUnread", { label: name, unread: unreadText(count) }) : name);
    badge.textContent = count > 99 ? num(99) + "+" : count ? num(count) : "";
    badge.hidden = !count;
  }
  function setOpen(open, focus) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    state.open = open;
    if (open) state.readSeq = Math.max(state.readSeq, state.lastSeq);
    labelLauncher();
    save();
    if (open) { connect(); follow(true); } // (a hidden list cannot scroll)
    if (open && focus !== false) input.focus();
    setModal();
  }
  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  closeBtn.addEventListener("click", function () { setOpen(false); launcher.focus(); });
  // An Escape the widget acts on (closing the panel) is the widget's: the page's own
  // Escape handlers (closing its menu or dialog under the chat) do not get it, nor its
  // keyup. An Escape the widget does not use (the panel is closed) goes on to the page.
  var escaping = false;
  root.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && !ev.isComposing && !panel.hidden) {
      ev.stopPropagation();
      escaping = true;
      setOpen(false);
      launcher.focus();
    } else if (ev.key === "Tab") keepTabInside(ev);
  });
  root.addEventListener("keyup", function (ev) {
    if (ev.key === "Escape" && escaping) { escaping = false; ev.stopPropagation(); }
  });

  // ---- full screen: a modal dialog ---------------------------------------------------
  // At phone width (widget.css: max-width 480px) the open panel covers the page, so it
  // is a modal dialog while it does: aria-modal, the page's own content inert (only
  // what was not inert already; given back when the panel closes or floats again), the
  // launcher under it inert, and Tab going round inside the panel. The floating panel
  // of a wider screen stays a non-modal dialog beside the page.
  var phone = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;
  var madeInert = null; // the page's elements this widget made inert, while modal
  var path = [];        // while modal: the widget's element and its ancestors below <body>
  var NOT_SHOWN = /^(HEAD|SCRIPT|STYLE|LINK|META|TEMPLATE|NOSCRIPT)$/;
  var TABBABLE = "button, [href], textarea, input, select, [tabindex]";
  function fullScreen() { return Boolean(phone && phone.matches); }
  // Inert: one of the page's elements beside the widget's path, unless it is already
  // (the page's own choice, left to the page) or never shown.
  function makeInert(other) {
    if (path.indexOf(other) >= 0 || other.hasAttribute("inert") || NOT_SHOWN.test(other.tagName)) return;
    other.setAttribute("inert", "");
    madeInert.push(other);
  }
  function onPath(parent) {
    return path.some(function (node) { return node.parentElement === parent; });
  }
  // What the page does while the panel covers it (a single-page app rendering a toast,
  // a cookie banner, its next view): an element it adds beside the widget's path is
  // made inert too, and so is one it gives back from its own inert (its own dialog
  // closing). Only those are taken back when the panel closes: the page's own inert
  // stays as the page left it.
  var pageWatch = window.MutationObserver ? new MutationObserver(function (records) {
    if (madeInert === null) return;
    records.forEach(function (r) {
      if (r.type === "childList" && onPath(r.target)) {
        Array.prototype.forEach.call(r.addedNodes, function (n) {
          if (n.nodeType === 1 && n.parentElement === r.target) makeInert(n);
        });
      } else if (r.type === "attributes" && r.target.parentElement && onPath(r.target.parentElement) &&
                 madeInert.indexOf(r.target) < 0) {
        makeInert(r.target);
      }
    });
  }) : null;
  function setModal() {
    var modal = !panel.hidden && fullScreen();
    if (modal !== (madeInert !== null)) {
      if (modal) {
        madeInert = [];
        path = [];
        for (var node = host; node.parentElement && node !== document.body; node = node.parentElement) {
          path.push(node);
        }
        path.forEach(function (node) {
          Array.prototype.forEach.call(node.parentElement.children, makeInert);
        });
        if (pageWatch && path.length) {
          // subtree: the inert attribute of <body>'s children is seen only that way;
          // records deeper down are passed over (onPath), and only while modal.
          pageWatch.observe(path[path.length - 1].parentElement, {
            childList: true, subtree: true, attributes: true, attributeFilter: ["inert"],
          });
        }
        panel.setAttribute("aria-modal", "true");
        launcher.setAttribute("inert", "");
        // (The screen became narrow while the page had the focus.)
        if (!panel.contains(shadow.activeElement)) panel.focus();
      } else {
        if (pageWatch) { pageWatch.takeRecords(); pageWatch.disconnect(); }
        madeInert.forEach(function (n) { n.removeAttribute("inert"); });
        madeInert = null;
        path = [];
        panel.removeAttribute("aria-modal");
        launcher.removeAttribute("inert");
      }
    }
    fitViewport();
  }
  function keepTabInside(ev) {
    if (madeInert === null) return;
    var stops = Array.prototype.filter.call(panel.querySelectorAll(TABBABLE), function (n) {
      return !n.disabled && n.tabIndex >= 0 && n.getClientRects().length > 0;
    });
    if (!stops.length) return;
    var at = shadow.activeElement, first = stops[0], last = stops[stops.length - 1];
    if (ev.shiftKey ? (at === first || at === panel) : at === last) {
      ev.preventDefault();
      (ev.shiftKey ? last : first).focus();
    }
  }
  // The full-screen panel takes the visual viewport, the part of the page the visitor
  // sees: the on-screen keyboard covers the bottom of the layout viewport (iOS Safari;
  // Chrome too unless the page's viewport meta says interactive-widget=resizes-content),
  // where the message box is. (Comparing with innerHeight to tell whether a keyboard is
  // up is unreliable on iOS.) Not while the visitor pinch-zooms: then 100dvh (widget.css).
  function fitViewport() {
    var vv = window.visualViewport;
    var fit = madeInert !== null && vv && Math.abs(vv.scale - 1) < 0.01;
    panel.style.top = fit ? vv.offsetTop + "px" : "";
    panel.style.height = fit ? vv.height + "px" : "";
  }
  if (phone) {
    if (phone.addEventListener) phone.addEventListener("change", setModal);
    else phone.addListener(setModal); // Safari before 14
  }
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); send(); input.focus(); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  input.addEventListener("focus", function () { if (idle) connect(); });
  input.addEventListener("input", fitInputDir);
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = ""; // the same file again is a new choice
    if (file) sendFile(file);
    input.focus();
  });
  document.addEventListener("visibilitychange", function () {
    if (idle && !panel.hidden && document.visibilityState === "visible") connect();
  });
  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });
  window.addEventListener("storage", function (ev) { // another tab saved: maybe read there
    if (persist && ev.key === STORE_KEY) adoptReadSeq(readStored());
  });
  if (cfg.userToken && window.MutationObserver) {
    new MutationObserver(function () { // the site refreshed an expired sign-in
      var before = cfg.userToken;
      if (pageUserToken() !== before && refused) { refused = false; connect(); }
    }).observe(script, { attributes: true, attributeFilter: ["data-user-token"] });
  }
  // A single-page app may switch its language after the widget started (<html lang>,
  // or the script's data-lang; or the visitor their browser's): the widget's own words
  // follow, chosen as at the start, data-texts still winning. The conversation stays as
  // it is: each message keeps its own language, and the words shown with it (the
  // screen reader's "You:", a note under it) stay those it was shown with.
  function followLanguage() {
    var shown = connText;
    cfg.lang = pageLang(); // the hint for the bot's first answer follows the page too
    chooseWords();
    cfg.title = pageTitle();
    showWords();
    labelLauncher();
    if (connKey) {
      connText = t(connKey);
      if (status.textContent === shown) status.textContent = connText; // (not a notice)
    }
  }
  if (window.MutationObserver) {
    var languageWatch = new MutationObserver(followLanguage);
    languageWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
    languageWatch.observe(script, { attributes: true, attributeFilter: ["data-lang"] });
  }
  window.addEventListener("languagechange", followLanguage);

  // ---- start ------------------------------------------------------------------------
  forgetOtherUsers();
  load();
  state.cache.forEach(function (m) {
    var agent = m.direction === "out" ? agentName(m) : null;
    var li = bubble(m.direction, m.text, m.direction === "out" && !agent, agent, m.lang);
    li.dataset.seq = String(m.seq);
    showFiles(li, m.files || []);
    if (m.failed) markFailed(li);
    bySeq[m.seq] = li;
  });
  var newest = state.cache[state.cache.length - 1];
  if (newest && newest.buttons && !state.outbox.length) showButtons(bySeq[newest.seq], newest.buttons);
  state.outbox.forEach(function (m) { // sent on the first welcome (mount() connects)
    var li = bubble("in", m.text, false);
    byClient[m.client_id] = li;
    setPending(li, "sending");
  });
  labelLauncher(); // with the replies that came after the visitor last looked
  function mount() {
    shadow.append(css, root);
    document.body.append(host);
    // Reopened as the visitor left it, without taking the focus: a page that just
    // loaded belongs to the page (its skip links, its first heading). The visitor moves
    // in with Tab or a tap. Not on a phone, where it would cover the whole page (a link
    // from the chat opened in a new tab) as a modal the visitor did not open.
    if (state.open && !fullScreen()) setOpen(true, false);
    else if (state.token || state.outbox.length) connect(); // catch up on replies
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
