"""Phrase pools for the synthetic speakers, per language: wake phrases and everyday phrases.

Wake phrases have at least two words and three or more syllables, like real wake phrases
("xiao3 zhi4 tong2 xue2", "hey jasper"). The everyday phrases are what a speaker says to
a device or another person; several reuse words of the wake phrases on purpose ("lantern
festival" next to "okay lantern"), and the builder adds more confusables by recombining,
truncating and re-toning the wake phrases (see synth_speakers.confusables).

Mandarin is written in pinyin with tone numbers for espeak-ng's cmn-latn-pinyin voice (its
Han-character reading is poorer); the manifest records the pinyin. Spellings elsewhere are
plain everyday language; espeak-ng reads Arabic without vowel marks approximately, which is
still useful speech-like training audio.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhrasePool:
    wake: tuple[str, ...]
    other: tuple[str, ...]


POOLS: dict[str, PhrasePool] = {
    "cmn": PhrasePool(
        wake=("xiao3 zhi4 tong2 xue2", "ni3 hao3 xiao3 bei4", "tian1 mao1 jing1 ling2", "xiao3 ai4 tong2 xue2",
              "ni3 hao3 xiao3 yi4", "xiao3 fang1 guan3 jia1", "kai1 men2 zhi1 ma2", "xiao3 long2 ni3 hao3",
              "da4 bai2 ni3 hao3", "xiao3 ming2 kuai4 lai2", "jing1 ling2 xing3 xing3", "bai2 yun2 zhu4 shou3"),
        other=("jin1 tian1 tian1 qi4 zen3 me yang4", "da3 kai1 dian4 deng1", "guan1 bi4 kong1 tiao2",
               "bo1 fang4 yin1 yue4", "xian4 zai4 ji3 dian3 le", "wo3 xiang3 he1 cha2", "ming2 tian1 jian4",
               "qing3 ba3 men2 guan1 shang4", "ta1 zai4 kan4 shu1", "wo3 men qu4 chi1 fan4 ba",
               "zhe4 ge4 duo1 shao3 qian2", "xie4 xie4 ni3", "zao3 shang4 hao3", "wan3 an1",
               "shang4 hai3 de tian1 qi4 hen3 re4", "bei3 jing1 huan1 ying2 ni3", "tiao2 di1 yin1 liang4",
               "ding4 yi2 ge4 nao4 zhong1", "gei3 ma1 ma da3 dian4 hua4", "xiao3 peng2 you3 men hao3",
               "tong2 xue2 men zai4 jian4", "ni3 chi1 le ma", "hao3 jiu3 bu2 jian4", "yi1 er4 san1 si4 wu3",
               "jin1 tian1 xing1 qi1 ji3", "tian1 shang4 you3 bai2 yun2", "kai1 che1 qu4 fu4 dan4",
               "zhi1 dao4 le", "yu3 yin1 shi2 bie2", "shu4 zi4 xin4 hao4 chu3 li3")),
    "en": PhrasePool(
        wake=("hello computer", "open sesame", "hey jasper", "okay lantern", "good morning robot", "wake up buddy",
              "hey marigold", "listen beacon", "hello pebble", "ahoy captain", "hey nova", "okay harbour"),
        other=("what time is it", "turn on the lights", "play some music", "how is the weather", "call my mother",
               "set a timer", "the quick brown fox", "see you tomorrow", "where are my keys", "open the window",
               "good night", "hello there", "computer science", "morning coffee", "let us go", "remind me at noon",
               "close the door please", "is it going to rain", "add milk to the list", "tell me a joke",
               "turn the volume down", "stop the alarm", "read my messages", "lantern festival",
               "a robot vacuum", "my old buddy", "the harbour is busy", "a bright new morning",
               "sesame seeds", "the captain said no")),
    "ar": PhrasePool(
        wake=("مرحبا حاسوب", "صباح الخير يا روبوت", "افتح يا سمسم", "استيقظ يا صديقي", "يا فانوس النور",
              "مرحبا يا قبطان", "اسمعني يا منارة", "أهلا يا نجمة"),
        other=("كم الساعة الآن", "أشعل الضوء", "شغل الموسيقى", "كيف الطقس اليوم", "اتصل بأمي", "اضبط المنبه",
               "إلى اللقاء غدا", "أين مفاتيحي", "افتح النافذة", "تصبح على خير", "شكرا جزيلا", "أنا جائع",
               "كل شيء بخير", "هيا بنا", "أغلق الباب", "هل ستمطر غدا", "أخبرني نكتة", "اخفض الصوت",
               "صديقي في البيت", "الحاسوب جديد")),
    "de": PhrasePool(
        wake=("hallo computer", "guten morgen roboter", "sesam öffne dich", "hallo kumpel", "okay laterne",
              "hey jasmin", "wach auf freundchen", "hallo kapitän"),
        other=("wie spät ist es", "mach das licht an", "spiel etwas musik", "wie ist das wetter",
               "ruf meine mutter an", "stell einen wecker", "bis morgen", "wo sind meine schlüssel",
               "öffne das fenster", "gute nacht", "danke schön", "ich habe hunger", "das ist gut",
               "wir gehen jetzt", "kaffee am morgen", "mach die tür zu", "wird es regnen", "lies meine nachrichten",
               "erzähl mir einen witz", "leiser bitte", "der laternenumzug", "mein alter kumpel")),
    "es": PhrasePool(
        wake=("hola computadora", "buenos días robot", "ábrete sésamo", "oye linterna", "despierta amigo",
              "hola jazmín", "vamos capitán", "oye marinero"),
        other=("qué hora es", "enciende la luz", "pon algo de música", "qué tiempo hace", "llama a mi madre",
               "pon una alarma", "hasta mañana", "dónde están mis llaves", "abre la ventana", "buenas noches",
               "muchas gracias", "tengo hambre", "está muy bien", "nos vamos ahora", "café por la mañana",
               "cierra la puerta", "va a llover", "lee mis mensajes", "cuéntame un chiste", "baja el volumen",
               "mi amigo el robot", "la linterna roja")),
    "fr": PhrasePool(
        wake=("bonjour ordinateur", "salut robot", "sésame ouvre toi", "réveille toi copain", "dis lanterne",
              "bonjour capitaine", "hé jasmin", "allez marinette"),
        other=("quelle heure est il", "allume la lumière", "mets de la musique", "quel temps fait il",
               "appelle ma mère", "mets un minuteur", "à demain", "où sont mes clés", "ouvre la fenêtre",
               "bonne nuit", "merci beaucoup", "j'ai faim", "c'est très bien", "on y va", "un café le matin",
               "ferme la porte", "va t il pleuvoir", "lis mes messages", "raconte moi une blague", "baisse le son",
               "mon copain robot", "la lanterne magique")),
    "hi": PhrasePool(
        wake=("नमस्ते कंप्यूटर", "सुप्रभात रोबोट", "खुल जा सिम सिम", "जागो मेरे दोस्त", "सुनो लालटेन",
              "नमस्ते कप्तान", "अरे चमेली", "चलो सितारे"),
        other=("कितने बजे हैं", "बत्ती जलाओ", "कुछ संगीत बजाओ", "मौसम कैसा है", "माँ को फ़ोन करो",
               "अलार्म लगाओ", "कल मिलते हैं", "मेरी चाबियाँ कहाँ हैं", "खिड़की खोलो", "शुभ रात्रि",
               "बहुत धन्यवाद", "मुझे भूख लगी है", "सब ठीक है", "चलो घर चलें", "दरवाज़ा बंद करो",
               "क्या बारिश होगी", "एक चुटकुला सुनाओ", "आवाज़ कम करो", "मेरा दोस्त रोबोट", "पुरानी लालटेन")),
    "ru": PhrasePool(
        wake=("привет компьютер", "доброе утро робот", "сезам откройся", "проснись дружище", "эй фонарик",
              "привет капитан", "слушай маячок", "здравствуй звёздочка"),
        other=("который час", "включи свет", "включи музыку", "какая погода", "позвони маме",
               "поставь будильник", "до завтра", "где мои ключи", "открой окно", "спокойной ночи",
               "большое спасибо", "я голоден", "всё хорошо", "пойдём домой", "закрой дверь",
               "будет ли дождь", "расскажи анекдот", "сделай тише", "мой старый дружище", "новый компьютер")),
    "it": PhrasePool(
        wake=("ciao computer", "buongiorno robot", "apriti sesamo", "sveglia amico", "ehi lanterna",
              "ciao capitano", "ascolta stellina", "forza marinaio"),
        other=("che ore sono", "accendi la luce", "metti un po di musica", "che tempo fa", "chiama mia madre",
               "metti una sveglia", "a domani", "dove sono le mie chiavi", "apri la finestra", "buona notte",
               "grazie mille", "ho fame", "va tutto bene", "andiamo adesso", "chiudi la porta", "pioverà domani",
               "raccontami una barzelletta", "abbassa il volume", "il mio amico robot", "una lanterna rossa")),
    "pt": PhrasePool(
        wake=("olá computador", "bom dia robô", "abre te sésamo", "acorda amigo", "ei lanterna", "olá capitão",
              "escuta estrelinha", "vamos marinheiro"),
        other=("que horas são", "acende a luz", "toca uma música", "como está o tempo", "liga para minha mãe",
               "põe um alarme", "até amanhã", "onde estão minhas chaves", "abre a janela", "boa noite",
               "muito obrigado", "estou com fome", "está tudo bem", "vamos embora", "fecha a porta", "vai chover",
               "conta uma piada", "abaixa o volume", "meu amigo robô", "a lanterna velha")),
}
