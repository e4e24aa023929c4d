// Five example tickets, one per language the model was trained on (written for this page).
"use strict";

export const EXAMPLES = [
  {
    lang: "en",
    name: "English",
    subject: "Checkout down for all customers",
    text: "Since 08:00 every card payment in our online shop fails with error 502 and no customer can " +
      "check out. We are losing orders every minute. Please escalate this immediately!",
  },
  {
    lang: "de",
    name: "Deutsch",
    subject: "Rechnung für November doppelt erhalten",
    text: "Guten Tag, wir haben die Rechnung für November zweimal bekommen, einmal per Post und einmal per " +
      "E-Mail, mit unterschiedlichen Nummern. Können Sie bitte prüfen, welche gilt? Vielen Dank.",
  },
  {
    lang: "es",
    name: "Español",
    subject: "Sugerencia: modo oscuro",
    text: "Hola, nos gustaría sugerir un modo oscuro para el panel de control. No es urgente, pero " +
      "varios compañeros lo han pedido. Gracias por vuestro trabajo.",
  },
  {
    lang: "fr",
    name: "Français",
    subject: "Données clients supprimées",
    text: "Bonjour, après la mise à jour d'hier soir, toutes les fiches clients de notre agence de Lyon " +
      "ont disparu de la base. Nous ne pouvons plus traiter aucune commande. Merci d'intervenir en urgence.",
  },
  {
    lang: "pt",
    name: "Português",
    subject: "Como exportar relatórios em PDF?",
    text: "Olá, gostaria de saber como exportar os relatórios mensais em PDF. Procurei no manual mas não " +
      "encontrei a opção. Obrigado pela ajuda.",
  },
];
